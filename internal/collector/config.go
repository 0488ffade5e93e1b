package collector

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes the collector's HTTP server.
type Config struct {
	// Addr is the TCP address to listen on, such as ":8080".
	Addr string
	// Token, when set, is the bearer token every POST /v1/events must
	// carry. Empty disables authentication.
	Token string
	// MaxBodyBytes caps the request body; larger bodies get 413.
	MaxBodyBytes int64
	// MaxEvents caps the number of events in one request; more get 413.
	MaxEvents int
	// RetryAfter is advertised in the Retry-After header (rounded up to
	// whole seconds) when Kafka is unavailable.
	RetryAfter time.Duration
	// ShutdownTimeout bounds how long a graceful shutdown waits for
	// requests in flight.
	ShutdownTimeout time.Duration
}

// DefaultConfig returns the production defaults: port 8080, no token,
// 5 MiB and 10,000 events per request, Retry-After of one second and a 15 s
// shutdown grace period.
func DefaultConfig() Config {
	return Config{
		Addr:            ":8080",
		MaxBodyBytes:    5 << 20,
		MaxEvents:       10_000,
		RetryAfter:      time.Second,
		ShutdownTimeout: 15 * time.Second,
	}
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("collector config: Addr: required")
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("collector config: MaxBodyBytes: must be positive, got %d", c.MaxBodyBytes)
	case c.MaxEvents <= 0:
		return fmt.Errorf("collector config: MaxEvents: must be positive, got %d", c.MaxEvents)
	case c.RetryAfter <= 0:
		return fmt.Errorf("collector config: RetryAfter: must be positive, got %s", c.RetryAfter)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("collector config: ShutdownTimeout: must be positive, got %s", c.ShutdownTimeout)
	}
	return nil
}
