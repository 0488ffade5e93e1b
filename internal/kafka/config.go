// Package kafka holds Sluice's Kafka clients: a durable, idempotent
// publisher, topic provisioning, offset inspection and W3C trace context
// propagation through record headers. The publisher and the pipeline's
// consumer (activities) use franz-go; admin and offset lookups speak sarama.
package kafka

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Default values used by DefaultConfig and Config.Sarama.
const (
	// DefaultClientID identifies Sluice to the brokers.
	DefaultClientID = "sluice"
	// DefaultVersion is the Kafka protocol version spoken by default.
	DefaultVersion = "2.8.0"
)

// Network and retry settings applied by Config.Sarama. They are tuned so that
// an unreachable cluster surfaces as an error within a few seconds instead of
// the minutes sarama's defaults could take.
const (
	dialTimeout     = 3 * time.Second
	writeTimeout    = 5 * time.Second
	readTimeout     = 10 * time.Second // must exceed produceTimeout
	produceTimeout  = 5 * time.Second
	metadataTimeout = 10 * time.Second
	metadataRetries = 2
	metadataBackoff = 250 * time.Millisecond
	produceRetries  = 3
	produceBackoff  = 250 * time.Millisecond
	// deliveryTimeout bounds how long the publisher keeps a record it
	// could not deliver: retries included, a publish to a cluster that
	// is down fails within it.
	deliveryTimeout = 8 * time.Second
	adminTimeout    = 10 * time.Second
	adminRetries    = 2
	adminBackoff    = 250 * time.Millisecond
)

// minVersion is the oldest protocol version Sluice supports.
var minVersion = sarama.V2_8_0_0

// Config holds the connection settings shared by every Kafka client Sluice
// creates.
type Config struct {
	// Brokers lists the bootstrap brokers as host:port.
	Brokers []string
	// ClientID is sent to the brokers with every request; empty means
	// DefaultClientID.
	ClientID string
	// Version is the Kafka protocol version to speak, at least 2.8.0; empty
	// means DefaultVersion.
	Version string
}

// DefaultConfig returns a Config for a broker on localhost:9092.
func DefaultConfig() Config {
	return Config{
		Brokers:  []string{"localhost:9092"},
		ClientID: DefaultClientID,
		Version:  DefaultVersion,
	}
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka config: Brokers: at least one broker is required")
	}
	for i, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			return fmt.Errorf("kafka config: Brokers[%d]: empty address", i)
		}
	}
	if _, err := c.version(); err != nil {
		return err
	}
	return nil
}

// version parses c.Version and checks it against minVersion.
func (c Config) version() (sarama.KafkaVersion, error) {
	s := c.Version
	if s == "" {
		s = DefaultVersion
	}
	v, err := sarama.ParseKafkaVersion(s)
	if err != nil {
		return v, fmt.Errorf("kafka config: Version: %w", err)
	}
	if !v.IsAtLeast(minVersion) {
		return v, fmt.Errorf("kafka config: Version: %s is older than the minimum %s", s, minVersion)
	}
	return v, nil
}

// clientID is c.ClientID, or DefaultClientID when it is empty.
func (c Config) clientID() string {
	if c.ClientID == "" {
		return DefaultClientID
	}
	return c.ClientID
}

// Sarama validates c and builds the base sarama configuration shared by all
// clients: protocol version, client ID and bounded network, metadata and
// admin timeouts. Callers layer producer or consumer settings on top.
func (c Config) Sarama() (*sarama.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	v, _ := c.version() // already checked by Validate

	sc := sarama.NewConfig()
	sc.Version = v
	sc.ClientID = c.clientID()

	sc.Net.DialTimeout = dialTimeout
	sc.Net.ReadTimeout = readTimeout
	sc.Net.WriteTimeout = writeTimeout

	sc.Metadata.Retry.Max = metadataRetries
	sc.Metadata.Retry.Backoff = metadataBackoff
	sc.Metadata.Timeout = metadataTimeout
	// Never create topics as a side effect of a metadata request: topics
	// are provisioned explicitly with EnsureTopic.
	sc.Metadata.AllowAutoTopicCreation = false

	sc.Admin.Timeout = adminTimeout
	sc.Admin.Retry.Max = adminRetries
	sc.Admin.Retry.Backoff = adminBackoff

	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("validating sarama config: %w", err)
	}
	return sc, nil
}

// Franz validates c and returns the base options of a franz-go client with
// the same settings as Sarama: brokers, client ID, the protocol version as
// the highest one spoken, and bounded dial, request and metadata times.
// Callers add producer or consumer options.
func (c Config) Franz() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	v, _ := c.version() // already checked by Validate
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.clientID()),
		kgo.DialTimeout(dialTimeout),
		kgo.RequestTimeoutOverhead(readTimeout - produceTimeout),
		kgo.MetadataMinAge(metadataBackoff),
		kgo.RequestRetries(metadataRetries),
	}
	// Versions franz-go does not know yet are left to negotiation.
	if vs := kversion.FromString(v.String()); vs != nil {
		opts = append(opts, kgo.MaxVersions(vs))
	}
	return opts, nil
}
