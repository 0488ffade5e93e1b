// Package aggregate defines Sluice's live aggregation once, for both the
// stream path (Go, per batch) and the batch path (SQL over events), so the
// two give the same numbers.
package aggregate

import (
	"slices"
	"strings"
	"time"

	"github.com/sluicedata/sluice/schemas"
)

// MinuteKey identifies one row of item_counts_minute: events per UTC minute,
// type, item, channel and city. Absent optional fields are "".
type MinuteKey struct {
	Minute  time.Time // UTC, truncated to the minute
	Type    string
	ItemID  string
	Channel string
	City    string
}

// KeyOf is the stream-side definition: the minute bucket an event counts in.
func KeyOf(e *schemas.Event) MinuteKey {
	return MinuteKey{Minute: e.Minute(), Type: e.Type, ItemID: e.ItemID, Channel: e.Channel, City: e.City}
}

// Less orders keys by (minute, type, item, channel, city).
func (k MinuteKey) Less(o MinuteKey) bool { return k.Compare(o) < 0 }

// Compare orders keys by (minute, type, item, channel, city), like
// cmp.Compare.
func (k MinuteKey) Compare(o MinuteKey) int {
	if c := k.Minute.Compare(o.Minute); c != 0 {
		return c
	}
	if c := strings.Compare(k.Type, o.Type); c != 0 {
		return c
	}
	if c := strings.Compare(k.ItemID, o.ItemID); c != 0 {
		return c
	}
	if c := strings.Compare(k.Channel, o.Channel); c != 0 {
		return c
	}
	return strings.Compare(k.City, o.City)
}

// Counts is a set of minute buckets and their counts.
type Counts map[MinuteKey]int64

// Add counts one event in its bucket. The stream path (per batch, new
// events only) and the batch path (recomputing from the events table) both
// go through here, so they cannot disagree on what a bucket is.
func (c Counts) Add(e *schemas.Event) { c[KeyOf(e)]++ }

// Keys returns the buckets in Less order.
func (c Counts) Keys() []MinuteKey { return c.AppendKeys(nil) }

// AppendKeys appends the buckets to dst in Less order.
func (c Counts) AppendKeys(dst []MinuteKey) []MinuteKey {
	start := len(dst)
	for k := range c {
		dst = append(dst, k)
	}
	slices.SortFunc(dst[start:], MinuteKey.Compare)
	return dst
}
