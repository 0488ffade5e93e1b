package aggregate

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/sluicedata/sluice/schemas"
)

// batchEvents is a consumer batch as the benchmark's load looks: Zipf
// items, three types, two channels, within two minutes.
func batchEvents(n int) []schemas.Event {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, 1999)
	types := []string{"share", "view", "order"}
	channels := []string{"wechat", "qq"}
	cities := []string{"shanghai", "beijing", "shenzhen", "guangzhou", "chengdu", "hangzhou", "wuhan", "xian"}
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	out := make([]schemas.Event, n)
	for i := range out {
		item := int(zipf.Uint64())
		out[i] = schemas.Event{EventID: "e" + strconv.Itoa(i), Type: types[rng.IntN(3)], ItemID: "r" + strconv.Itoa(item),
			Channel: channels[rng.IntN(2)], City: cities[item%len(cities)], UserID: "u",
			OccurredAt: t0.Add(time.Duration(rng.Int64N(int64(2 * time.Minute))))}
	}
	return out
}

func BenchmarkCountsBatch(b *testing.B) {
	events := batchEvents(16000)
	c := Counts{}
	var keys []MinuteKey
	b.ResetTimer()
	for range b.N {
		clear(c)
		for i := range events {
			c.Add(&events[i])
		}
		keys = c.AppendKeys(keys[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
	b.ReportMetric(float64(len(keys)), "keys")
}

func BenchmarkTallyBatch(b *testing.B) {
	events := batchEvents(16000)
	var t Tally
	var n int
	b.ResetTimer()
	for range b.N {
		t.Reset()
		for i := range events {
			t.Add(&events[i])
		}
		n = len(t.Sorted())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
	b.ReportMetric(float64(n), "keys")
}

// TestTallyAgreesWithCounts: the writer's Tally gives the buckets, counts
// and order of the one definition (KeyOf, Counts, MinuteKey.Compare),
// including times before 1970, on a minute boundary and in other zones.
func TestTallyAgreesWithCounts(t *testing.T) {
	events := batchEvents(5000)
	cst := time.FixedZone("CST", 8*3600)
	for i, at := range []time.Time{
		time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 0, 0, time.UTC),
		time.Date(2026, 12, 2, 11, 0, 0, 0, cst),
		time.Date(2026, 12, 2, 10, 59, 59, 999_999_999, cst),
	} {
		events[i].OccurredAt = at
	}
	var tally Tally
	for round := range 2 { // a Reset Tally counts afresh
		counts := Counts{}
		tally.Reset()
		for i := range events[round:] {
			counts.Add(&events[round+i])
			tally.Add(&events[round+i])
		}
		keys := counts.Keys()
		got := tally.Sorted()
		if len(got) != len(keys) {
			t.Fatalf("round %d: tally has %d buckets, counts %d", round, len(got), len(keys))
		}
		for i, b := range got {
			if !b.Key.Minute.Equal(keys[i].Minute) || b.Key.Minute.Location() != time.UTC ||
				b.Key.Type != keys[i].Type || b.Key.ItemID != keys[i].ItemID || b.Key.Channel != keys[i].Channel || b.Key.City != keys[i].City {
				t.Fatalf("round %d: bucket %d is %+v, counts has %+v", round, i, b.Key, keys[i])
			}
			if b.N != counts[keys[i]] {
				t.Fatalf("round %d: bucket %+v counts %d, want %d", round, b.Key, b.N, counts[keys[i]])
			}
		}
	}
}

// TestTallyKeepsLookalikeKeysApart: Tally hashes type, channel and city by
// their lengths and end bytes only, so keys that differ inside those
// fields (or by an empty field) land in the same probe chain and must
// still count apart.
func TestTallyKeepsLookalikeKeysApart(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 0, 30, 0, time.UTC)
	var events []schemas.Event
	for _, city := range []string{"shanghai", "shenghai", "sxxxxxxi", ""} {
		for _, ch := range []string{"wechat", "wxxxxt", ""} {
			for _, typ := range []string{"share", "sxxxe"} {
				for n := 0; n < 3; n++ {
					events = append(events, schemas.Event{Type: typ, ItemID: "r1", Channel: ch, City: city, OccurredAt: at})
				}
			}
		}
	}
	var tally Tally
	counts := Counts{}
	for i := range events {
		tally.Add(&events[i])
		counts.Add(&events[i])
	}
	got := tally.Sorted()
	if len(got) != len(counts) || len(got) != 4*3*2 {
		t.Fatalf("%d buckets, counts has %d, want 24", len(got), len(counts))
	}
	for _, b := range got {
		if b.N != 3 || counts[b.Key] != 3 {
			t.Fatalf("bucket %+v counts %d (Counts %d), want 3", b.Key, b.N, counts[b.Key])
		}
	}
}
