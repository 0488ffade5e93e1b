// Package aggregate defines Sluice's live aggregation once, for both the
// stream path (Go, per batch) and the batch path (SQL over events), so the
// two give the same numbers.
package aggregate

import (
	"cmp"
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
	return compareTuple(&k, &o)
}

// compareTuple orders keys of the same minute by (type, item, channel, city).
func compareTuple(k, o *MinuteKey) int {
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

// Tally counts one batch of events by MinuteKey, as Counts.Add does, for
// the stream writer: its map key holds the minute as Unix seconds instead
// of a time.Time and each bucket's count sits next to its key, so a batch
// is one map lookup per event and one sort of its buckets (Counts.Add,
// AppendKeys and the lookups of each key's count were a sixth of the
// worker's CPU, pprof). The zero Tally is ready to use.
type Tally struct {
	idx     map[tallyKey]int32
	buckets []Bucket
	order   []*Bucket
}

// Bucket is one minute bucket of a Tally and its count.
type Bucket struct {
	Key MinuteKey
	N   int64
	min int64 // Key.Minute in Unix seconds
}

type tallyKey struct {
	min                      int64
	typ, item, channel, city string
}

// Add counts e in its bucket (KeyOf(e)).
func (t *Tally) Add(e *schemas.Event) {
	u := e.OccurredAt.Unix()
	m := u - (u%60+60)%60 // floor to the minute, also before 1970
	k := tallyKey{min: m, typ: e.Type, item: e.ItemID, channel: e.Channel, city: e.City}
	if i, ok := t.idx[k]; ok {
		t.buckets[i].N++
		return
	}
	if t.idx == nil {
		t.idx = map[tallyKey]int32{}
	}
	t.idx[k] = int32(len(t.buckets))
	t.buckets = append(t.buckets, Bucket{
		Key: MinuteKey{Minute: time.Unix(m, 0).UTC(), Type: e.Type, ItemID: e.ItemID, Channel: e.Channel, City: e.City},
		N:   1, min: m,
	})
}

// Sorted returns the buckets in MinuteKey.Compare order, the order
// concurrent writers take the rows' locks in. The slice is the Tally's own.
func (t *Tally) Sorted() []*Bucket {
	t.order = t.order[:0]
	for i := range t.buckets {
		t.order = append(t.order, &t.buckets[i])
	}
	// Pointers, not the buckets themselves: moving 100-byte structs was
	// most of the sort's time.
	slices.SortFunc(t.order, func(a, b *Bucket) int {
		if c := cmp.Compare(a.min, b.min); c != 0 {
			return c
		}
		return compareTuple(&a.Key, &b.Key)
	})
	return t.order
}

// Reset empties t, keeping its memory, and lets go of the events' strings.
func (t *Tally) Reset() {
	clear(t.idx)
	clear(t.buckets)
	clear(t.order)
	t.buckets, t.order = t.buckets[:0], t.order[:0]
}
