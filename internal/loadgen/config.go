// Package loadgen generates synthetic v1 events for a restaurant app whose
// users share restaurants on WeChat and QQ, and sends them to the collector
// over HTTP or straight to Kafka.
package loadgen

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sluicedata/sluice/schemas"
)

// Config shapes a load run. Zero-valued Seed, Users, Items, Cities,
// ShareRatio, BatchSize and RunID take their defaults (see DefaultConfig).
type Config struct {
	Seed           int64         // random seed; default 1
	Users          int           // distinct users; default 10000
	Items          int           // restaurants, with Zipf popularity (s=1.1, v=1); default 2000
	Cities         []string      // city names; each user has a home city, each item a city
	ShareRatio     float64       // fraction of events of type share (default 0.6); the rest split view:order 3:1
	DuplicateRatio float64       // fraction of emitted items that re-send an earlier valid event byte for byte
	BadRatio       float64       // fraction of emitted items that are invalid
	Count          int           // total items to emit, duplicates and bad ones included; 0 = until ctx is done
	Rate           float64       // items per second; 0 = as fast as possible
	BatchSize      int           // items per Sink.Send; default 500
	Spread         time.Duration // occurred_at is uniform in [now-Spread, now]
	RunID          string        // event_id prefix unique to the run; default derived from Seed and start time
}

// maxRunIDLen leaves room in event_id for "-" and a sequence number.
const maxRunIDLen = 40

// DefaultConfig returns the defaults: seed 1, 10000 users, 2000 restaurants
// in eight Chinese cities, 60% shares, batches of 500, no duplicates, no
// bad items, no pacing and no count limit.
func DefaultConfig() Config {
	return Config{
		Seed:       1,
		Users:      10000,
		Items:      2000,
		Cities:     []string{"shanghai", "beijing", "shenzhen", "guangzhou", "chengdu", "hangzhou", "wuhan", "xian"},
		ShareRatio: 0.6,
		BatchSize:  500,
	}
}

// withDefaults fills zero-valued fields from DefaultConfig; RunID comes from
// Seed and start.
func (c Config) withDefaults(start time.Time) Config {
	d := DefaultConfig()
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.Users == 0 {
		c.Users = d.Users
	}
	if c.Items == 0 {
		c.Items = d.Items
	}
	if len(c.Cities) == 0 {
		c.Cities = d.Cities
	}
	if c.ShareRatio == 0 {
		c.ShareRatio = d.ShareRatio
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.RunID == "" {
		c.RunID = "lg" + strconv.FormatInt(c.Seed, 10) + "-" + strconv.FormatInt(start.UnixMilli(), 36)
	}
	return c
}

// Validate checks c, treating zero values as defaults. Errors name the
// field, e.g. "loadgen: Rate: must be >= 0".
func (c Config) Validate() error {
	problem := func(field, rule string) error {
		return fmt.Errorf("loadgen: %s: %s", field, rule)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"Users", c.Users}, {"Items", c.Items}, {"Count", c.Count}, {"BatchSize", c.BatchSize}} {
		if f.v < 0 {
			return problem(f.name, "must be >= 0")
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"ShareRatio", c.ShareRatio}, {"DuplicateRatio", c.DuplicateRatio}, {"BadRatio", c.BadRatio}} {
		if !(f.v >= 0 && f.v <= 1) {
			return problem(f.name, "must be between 0 and 1")
		}
	}
	if c.DuplicateRatio+c.BadRatio > 1 {
		return problem("BadRatio", "DuplicateRatio+BadRatio must be <= 1")
	}
	if !(c.Rate >= 0) || math.IsInf(c.Rate, 1) {
		return problem("Rate", "must be >= 0")
	}
	if c.Spread < 0 {
		return problem("Spread", "must be >= 0")
	}
	for i, city := range c.Cities {
		now := time.Now()
		probe := schemas.Event{EventID: "probe", Type: "share", OccurredAt: now, UserID: "u", ItemID: "r", City: city}
		if city == "" {
			return problem(fmt.Sprintf("Cities[%d]", i), "must not be empty")
		}
		if err := probe.Validate(now); err != nil {
			return problem(fmt.Sprintf("Cities[%d]", i), err.Error())
		}
	}
	if err := checkRunID(c.RunID); err != nil {
		return problem("RunID", err.Error())
	}
	return nil
}

// checkRunID checks that "<RunID>-<seq>" is a valid event_id.
func checkRunID(id string) error {
	if len(id) > maxRunIDLen {
		return fmt.Errorf("must be at most %d characters", maxRunIDLen)
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return errors.New("must contain only [A-Za-z0-9._:-]")
		}
	}
	return nil
}
