package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
)

func TestMaintainPartitionsFarAheadAndBehind(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	w := &store.Writer{DB: db}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var rows []store.EventRow
	for i, d := range []int{-1, 0, 3, 6, 7} {
		rows = append(rows, store.EventRow{Event: ev(fmt.Sprintf("m%d", i), "share", "r1", "u1", today.AddDate(0, 0, d).Add(time.Hour)), Offset: int64(i)})
	}
	if _, err := w.Write(ctx, &store.Batch{Pipeline: "p", Topic: "t", Events: rows, Offsets: []store.OffsetAdvance{{From: -1, To: 5}}}); err != nil {
		t.Fatal(err)
	}
	retention := map[string]int{"events": 15, "item_counts_minute": 15, "dead_letters": 15}

	// Far behind: nothing to add, nothing old enough to drop.
	rep, err := store.MaintainPartitions(ctx, db, today.AddDate(0, 0, -30), 7, retention)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep {
		if len(m.Added)+len(m.Dropped) != 0 {
			t.Fatalf("far behind changed %s: %+v", m.Table, m)
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM events"); n != 5 {
		t.Fatalf("events = %d after a no-op run, want 5", n)
	}

	// Far ahead, twice at once: days up to +27 added once, days before +5 dropped once.
	far := today.AddDate(0, 0, 20)
	var wg sync.WaitGroup
	reports := make([][]store.TableMaintenance, 2)
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := store.MaintainPartitions(ctx, db, far, 7, retention)
			if err != nil {
				t.Error(err)
			}
			reports[i] = r
		}()
	}
	wg.Wait()
	added, dropped := 0, 0
	for _, r := range reports {
		for _, m := range r {
			if m.Table == "events" {
				added += len(m.Added)
				dropped += len(m.Dropped)
			}
		}
	}
	// Before: yesterday..+7 (9 days). After: +5..+27 (23 days).
	if added != 20 || dropped != 6 {
		t.Fatalf("events: added %d, dropped %d across both runs; want 20 and 6 (each once)", added, dropped)
	}
	parts, err := store.ListPartitions(ctx, db, "events")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 24 || parts[0].Name != store.PartitionName(today.AddDate(0, 0, 5)) || parts[22].Name != store.PartitionName(today.AddDate(0, 0, 27)) {
		t.Fatalf("partitions after maintenance: first %s, last daily %s, %d in all", parts[0].Name, parts[len(parts)-2].Name, len(parts))
	}
	// Rows in kept partitions are untouched; rows past retention are gone.
	if n := count(t, db, "SELECT COUNT(*) FROM events"); n != 2 {
		t.Fatalf("events = %d, want the 2 rows of days +6 and +7", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM events WHERE event_id IN ('m3','m4')"); n != 2 {
		t.Fatalf("rows of kept days = %d, want 2", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM events PARTITION (pmax)"); n != 0 {
		t.Fatalf("pmax holds %d rows", n)
	}
}
