// Package aggregate defines Sluice's live aggregation once, for both the
// stream path (Go, per batch) and the batch path (SQL over events), so the
// two give the same numbers.
package aggregate

import (
	"cmp"
	"hash/maphash"
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
// the stream writer: an open-addressing table of bucket indexes, keyed by
// a hash of the minute (Unix seconds), the item and the short fields'
// lengths and end bytes, with each bucket's count next to its key; a
// batch is one probe per event and one sort of its buckets (Counts.Add,
// AppendKeys and the lookups of each key's count were a sixth of the
// worker's CPU; a Go map keyed by the five fields, hashing each, 9 %,
// pprof). The zero Tally is ready to use.
type Tally struct {
	slots   []int32 // 0: empty; else 1 + an index into buckets
	buckets []Bucket
	order   []*Bucket
	seed    maphash.Seed
}

// Bucket is one minute bucket of a Tally and its count.
type Bucket struct {
	Key  MinuteKey
	N    int64
	min  int64 // Key.Minute in Unix seconds
	hash uint64
}

// Add counts e in its bucket (KeyOf(e)).
func (t *Tally) Add(e *schemas.Event) {
	u := e.OccurredAt.Unix()
	m := u - (u%60+60)%60 // floor to the minute, also before 1970
	if 2*(len(t.buckets)+1) > len(t.slots) {
		t.grow()
	}
	h := t.hashOf(m, e)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			t.buckets = append(t.buckets, Bucket{
				Key: MinuteKey{Minute: time.Unix(m, 0).UTC(), Type: e.Type, ItemID: e.ItemID, Channel: e.Channel, City: e.City},
				N:   1, min: m, hash: h,
			})
			t.slots[i] = int32(len(t.buckets))
			return
		}
		b := &t.buckets[s-1]
		if b.hash == h && b.min == m && b.Key.ItemID == e.ItemID && b.Key.Type == e.Type &&
			b.Key.Channel == e.Channel && b.Key.City == e.City {
			b.N++
			return
		}
	}
}

// hashOf hashes the item with maphash and folds in the minute and, for
// type, channel and city (few distinct values each), only their lengths
// and end bytes: the full comparison on a hit keeps keys apart.
func (t *Tally) hashOf(m int64, e *schemas.Event) uint64 {
	h := maphash.String(t.seed, e.ItemID)
	h ^= uint64(m) * 0x9e3779b97f4a7c15
	h ^= short(e.Type) * 0xc2b2ae3d27d4eb4f
	h ^= short(e.Channel) * 0x165667b19e3779f9
	h ^= short(e.City) * 0x27d4eb2f165667c5
	h ^= h >> 31
	h *= 0x94d049bb133111eb
	return h ^ h>>29
}

func short(s string) uint64 {
	if s == "" {
		return 0
	}
	return uint64(len(s)) | uint64(s[0])<<16 | uint64(s[len(s)-1])<<24
}

// grow doubles the table (1024 slots at first) and re-inserts the buckets
// by their stored hashes.
func (t *Tally) grow() {
	if len(t.slots) == 0 {
		t.seed = maphash.MakeSeed()
	}
	t.slots = make([]int32, max(1024, 2*len(t.slots)))
	mask := uint64(len(t.slots) - 1)
	for k := range t.buckets {
		i := t.buckets[k].hash & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = int32(k + 1)
	}
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
	clear(t.slots)
	clear(t.buckets)
	clear(t.order)
	t.buckets, t.order = t.buckets[:0], t.order[:0]
}
