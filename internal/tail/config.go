package tail

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluicedata/sluice/schemas"
)

// Default values used by DefaultConfig.
const (
	// DefaultPositionsFile is where positions are kept unless configured.
	DefaultPositionsFile = ".sluice/tail-positions.json"
	// DefaultMaxLineBytes is the longest line shipped whole.
	DefaultMaxLineBytes = 64 << 10
)

// MaxMaxLineBytes bounds Config.MaxLineBytes so that every record stays
// below Kafka's default message size limit of about 1 MB.
const MaxMaxLineBytes = 900 << 10

// Config tunes a Tailer.
type Config struct {
	// Globs select the files to follow (filepath.Glob syntax). Files that
	// start matching later are picked up at the next scan.
	Globs []string
	// PositionsFile is the JSON file recording how far each file has been
	// shipped and acknowledged. Its directory is created if needed.
	PositionsFile string
	// Source identifies this machine; it becomes the user_id of type=log
	// events. New sanitises it (control characters and invalid UTF-8
	// become '_') and truncates it to 64 characters.
	Source string
	// ScanInterval is how often the globs are expanded again.
	ScanInterval time.Duration
	// PollInterval is how often followed files are checked for growth
	// when there is nothing left to read.
	PollInterval time.Duration
	// RotateWait is how long a file that no longer matches any glob
	// (renamed away or deleted) is still followed after it last changed,
	// for writers that keep appending to it for a while. It is forgotten
	// once it is fully read, acknowledged and idle that long.
	RotateWait time.Duration
	// BatchLines caps the lines published at once.
	BatchLines int
	// BatchBytes caps the bytes of record values published at once; a
	// batch holds at least one line even if it is longer.
	BatchBytes int
	// MaxLineBytes is the longest line, newline excluded, shipped whole.
	// Longer lines are cut there and the rest, up to the next newline, is
	// skipped. At most MaxMaxLineBytes.
	MaxLineBytes int
}

// DefaultConfig returns the production defaults for tailing nothing yet:
// positions in .sluice/tail-positions.json, the host name as Source, a 1 s
// scan, a 200 ms poll, a 5 s rotate wait, batches of up to 1,000 lines or
// 4 MiB and lines of up to 64 KiB. Globs must still be set.
func DefaultConfig() Config {
	return Config{
		PositionsFile: DefaultPositionsFile,
		Source:        hostname(),
		ScanInterval:  time.Second,
		PollInterval:  200 * time.Millisecond,
		RotateWait:    5 * time.Second,
		BatchLines:    1000,
		BatchBytes:    4 << 20,
		MaxLineBytes:  DefaultMaxLineBytes,
	}
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	if len(c.Globs) == 0 {
		return errors.New("tail config: Globs: at least one glob is required")
	}
	for i, g := range c.Globs {
		if strings.TrimSpace(g) == "" {
			return fmt.Errorf("tail config: Globs[%d]: empty pattern", i)
		}
		if _, err := filepath.Match(g, ""); err != nil {
			return fmt.Errorf("tail config: Globs[%d]: %q: %w", i, g, err)
		}
	}
	switch {
	case c.PositionsFile == "":
		return errors.New("tail config: PositionsFile: required")
	case strings.TrimSpace(c.Source) == "":
		return errors.New("tail config: Source: required")
	case c.ScanInterval <= 0:
		return fmt.Errorf("tail config: ScanInterval: must be positive, got %s", c.ScanInterval)
	case c.PollInterval <= 0:
		return fmt.Errorf("tail config: PollInterval: must be positive, got %s", c.PollInterval)
	case c.RotateWait < 0:
		return fmt.Errorf("tail config: RotateWait: must not be negative, got %s", c.RotateWait)
	case c.BatchLines <= 0:
		return fmt.Errorf("tail config: BatchLines: must be positive, got %d", c.BatchLines)
	case c.BatchBytes <= 0:
		return fmt.Errorf("tail config: BatchBytes: must be positive, got %d", c.BatchBytes)
	case c.MaxLineBytes <= 0 || c.MaxLineBytes > MaxMaxLineBytes:
		return fmt.Errorf("tail config: MaxLineBytes: must be in [1, %d], got %d", MaxMaxLineBytes, c.MaxLineBytes)
	}
	return nil
}

// hostname returns the host name, or "unknown".
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// sanitizeSource makes s a valid user_id: control characters and invalid
// UTF-8 become '_', surrounding spaces go, and it is cut to
// schemas.MaxUserIDLen characters.
func sanitizeSource(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.TrimSpace(s) {
		if n == schemas.MaxUserIDLen {
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) {
			r = '_'
		}
		b.WriteRune(r)
		n++
	}
	if out := strings.TrimSpace(b.String()); out != "" {
		return out
	}
	return "unknown"
}
