package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
	"github.com/sluicedata/sluice/schemas"
)

// genEvents makes n events on day with Zipf-distributed items.
func genEvents(rng *rand.Rand, prefix string, n int, day time.Time) []store.EventRow {
	zipf := rand.NewZipf(rng, 1.1, 1, 1999)
	types := []string{"share", "share", "share", "view", "view", "order"}
	channels := []string{"wechat", "qq", "app"}
	cities := []string{"shanghai", "beijing", "chengdu", "wuhan"}
	out := make([]store.EventRow, n)
	for i := range out {
		at := day.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
		out[i] = store.EventRow{Event: schemas.Event{
			EventID: fmt.Sprintf("%s-%d", prefix, i), Type: types[rng.IntN(len(types))], OccurredAt: at,
			UserID: "u" + strconv.Itoa(rng.IntN(5000)), ItemID: fmt.Sprintf("r%04d", zipf.Uint64()),
			Channel: channels[rng.IntN(3)], City: cities[rng.IntN(4)],
		}, Offset: int64(i)}
	}
	return out
}

func writeAll(t testing.TB, w *store.Writer, rows []store.EventRow, size int) {
	t.Helper()
	for start := 0; start < len(rows); start += size {
		if _, err := w.Write(context.Background(), &store.Batch{Pipeline: "p", Topic: "t", Events: rows[start:min(start+size, len(rows))]}); err != nil {
			t.Fatal(err)
		}
	}
}

// assertExact checks item_counts_minute of day against the recomputation.
func assertExact(t *testing.T, db *sqlx.DB, day time.Time) int {
	t.Helper()
	ctx := context.Background()
	re, err := store.Recompute(ctx, db, day, day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	live, err := store.LiveCounts(ctx, db, day, day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if d := store.Diff(live, re); len(d) > 0 {
		t.Fatalf("%d buckets differ from the recomputation, first %+v", len(d), d[0])
	}
	return len(re)
}

func mustExec(t *testing.T, db *sqlx.DB, q string, args ...any) int64 {
	t.Helper()
	r, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	n, _ := r.RowsAffected()
	return n
}

// corrupt damages a day's counts the three ways drift happens: a count
// off, a bucket lost, a bucket invented. It returns the invented bucket.
func corrupt(t *testing.T, db *sqlx.DB, day time.Time, n int) time.Time {
	t.Helper()
	d := day.Format("2006-01-02")
	if got := mustExec(t, db, "UPDATE item_counts_minute SET cnt = cnt + 5 WHERE event_date = ? ORDER BY minute_start, item_id LIMIT ?", d, n); got != int64(n) {
		t.Fatalf("corrupted %d rows", got)
	}
	if got := mustExec(t, db, "DELETE FROM item_counts_minute WHERE event_date = ? ORDER BY minute_start DESC, item_id LIMIT ?", d, n); got != int64(n) {
		t.Fatalf("deleted %d rows", got)
	}
	ghost := day.Add(17 * time.Minute)
	mustExec(t, db, "INSERT INTO item_counts_minute (event_date, minute_start, type, item_id, channel, city, cnt, updated_at) VALUES (?, ?, 'share', 'ghost', 'qq', 'x', 7, NOW()) ON DUPLICATE KEY UPDATE cnt = 7", d, ghost)
	return ghost
}

func today() time.Time { return time.Now().UTC().Truncate(24 * time.Hour) }

// TestRebuildDayKeepsConcurrentWrites corrupts a day, then commits stream
// batches for that same day between the rebuild's snapshot and its write
// (into drifted, lost, invented and new buckets): the result must equal the
// recomputation exactly, with those batches counted once.
func TestRebuildDayKeepsConcurrentWrites(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	w := &store.Writer{DB: db}
	day := today()
	rng := rand.New(rand.NewPCG(7, 7))
	writeAll(t, w, genEvents(rng, "a", 5000, day), 1000)
	assertExact(t, db, day)
	ghost := corrupt(t, db, day, 20)

	// Between snapshot and write: events into every kind of bucket.
	var between []store.EventRow
	rows, err := db.Queryx("SELECT minute_start, type, item_id, channel, city FROM item_counts_minute WHERE event_date = ? ORDER BY RAND() LIMIT 50", day.Format("2006-01-02"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; rows.Next(); i++ {
		var e schemas.Event
		if err := rows.Scan(&e.OccurredAt, &e.Type, &e.ItemID, &e.Channel, &e.City); err != nil {
			t.Fatal(err)
		}
		e.EventID, e.UserID, e.OccurredAt = "b-"+strconv.Itoa(i), "u", e.OccurredAt.Add(time.Second)
		between = append(between, store.EventRow{Event: e})
	}
	rows.Close()
	between = append(between, store.EventRow{Event: schemas.Event{EventID: "b-ghost", Type: "share", OccurredAt: ghost.Add(3 * time.Second), UserID: "u", ItemID: "ghost", Channel: "qq", City: "x"}})
	between = append(between, genEvents(rng, "b-new", 300, day)...)
	between = append(between, genEvents(rand.New(rand.NewPCG(7, 7)), "a", 100, day)...) // redeliveries: no effect

	res, err := store.RebuildDay(ctx, db, day, store.RebuildOptions{AfterSnapshot: func() { writeAll(t, w, between, 100) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuild: %+v", res)
	if res.RowsScanned != 5000 || res.Drifted != 41 || res.Deleted != 0 {
		t.Errorf("result %+v, want 5000 rows scanned, 41 drifted buckets (20 off, 20 lost, 1 invented), nothing deleted (the ghost got a real event)", res)
	}
	assertExact(t, db, day)
	var ghostCnt int64
	if err := db.Get(&ghostCnt, "SELECT cnt FROM item_counts_minute WHERE item_id = 'ghost'"); err != nil || ghostCnt != 1 {
		t.Errorf("invented bucket with one real event since: cnt %d (%v), want 1", ghostCnt, err)
	}

	// Nothing left to fix; an invented bucket alone is deleted.
	again, err := store.RebuildDay(ctx, db, day, store.RebuildOptions{})
	if err != nil || again.Drifted != 0 || again.BucketsWritten != 0 {
		t.Fatalf("second rebuild: %+v, %v; want no drift", again, err)
	}
	mustExec(t, db, "INSERT INTO item_counts_minute (event_date, minute_start, type, item_id, channel, city, cnt, updated_at) VALUES (?, ?, 'view', 'ghost2', '', '', 3, NOW())", day.Format("2006-01-02"), day.Add(time.Hour))
	third, err := store.RebuildDay(ctx, db, day, store.RebuildOptions{})
	if err != nil || third.Drifted != 1 || third.Deleted != 1 {
		t.Fatalf("third rebuild: %+v, %v; want the invented bucket deleted", third, err)
	}
	assertExact(t, db, day)
}

// TestRebuildDayUnderLoad rebuilds a corrupted day several times, twice at
// once each time, while four writers keep committing batches into that day
// (and the next), then checks the day is exact.
func TestRebuildDayUnderLoad(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	day := today()
	writeAll(t, &store.Writer{DB: db}, genEvents(rand.New(rand.NewPCG(1, 2)), "base", 20000, day), 2000)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var batches atomic.Int64
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &store.Writer{DB: db}
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				rows := genEvents(rng, fmt.Sprintf("w%d-%d", i, seq), 200, day)
				rows = append(rows, genEvents(rng, fmt.Sprintf("w%d-%d-next", i, seq), 20, day.AddDate(0, 0, 1))...)
				if _, err := w.Write(ctx, &store.Batch{Pipeline: "p", Topic: "t", Events: rows}); err != nil {
					t.Error(err)
					return
				}
				batches.Add(1)
			}
		}()
	}
	var total store.RebuildResult
	for round := range 3 {
		corrupt(t, db, day, 50)
		before := batches.Load()
		var rwg sync.WaitGroup
		results := make([]store.RebuildResult, 2)
		errs := make([]error, 2)
		for j := range 2 {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				results[j], errs[j] = store.RebuildDay(ctx, db, day, store.RebuildOptions{})
			}()
		}
		rwg.Wait()
		for j := range 2 {
			if errs[j] != nil {
				t.Fatal(errs[j])
			}
			total.Retries += results[j].Retries
		}
		// The lock serialises them: exactly one found the drift.
		if d := results[0].Drifted + results[1].Drifted; results[0].Drifted*results[1].Drifted != 0 || d < 101 {
			t.Errorf("round %d: drifted %d and %d, want one rebuild to find >= 101 and the other none", round, results[0].Drifted, results[1].Drifted)
		}
		t.Logf("round %d: %d batches committed during the rebuilds; %+v", round, batches.Load()-before, results)
		if batches.Load() == before {
			t.Errorf("round %d: no batch committed during the rebuilds: the test proves nothing", round)
		}
	}
	close(stop)
	wg.Wait()
	n := assertExact(t, db, day)
	assertExact(t, db, day.AddDate(0, 0, 1))
	t.Logf("%d batches, %d buckets exact, %d write retries", batches.Load(), n, total.Retries)
}

// TestRebuildDayFromScratch wipes a day's counts and rebuilds them; it
// reports the scan rate. SLUICE_REBUILD_ROWS sizes it (default 200,000).
func TestRebuildDayFromScratch(t *testing.T) {
	n := 200000
	if v := os.Getenv("SLUICE_REBUILD_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	day := today().AddDate(0, 0, 1)
	// Straight into events (the writer's counts are wiped anyway).
	rng := rand.New(rand.NewPCG(3, 3))
	const chunk = 5000
	for start := 0; start < n; start += chunk {
		rows := genEvents(rng, "s"+strconv.Itoa(start), min(chunk, n-start), day)
		var sb strings.Builder
		args := make([]any, 0, len(rows)*9)
		sb.WriteString("INSERT INTO events (event_date, event_id, type, occurred_at, user_id, item_id, channel, city, src_partition, src_offset, ingest_id, ingested_at) VALUES ")
		for i, r := range rows {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?,?,?,?,0,0,0,NOW())")
			e := r.Event
			args = append(args, day.Format("2006-01-02"), e.EventID, e.Type, e.OccurredAt, e.UserID, e.ItemID, e.Channel, e.City)
		}
		if _, err := db.Exec(sb.String(), args...); err != nil {
			t.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapAlloc
	var peak atomic.Uint64
	res, err := store.RebuildDay(ctx, db, day, store.RebuildOptions{Progress: func(p store.RebuildProgress) {
		if p.Phase == "writing" && p.BucketsWritten == 0 {
			runtime.GC() // live heap: the day's map, tuples and the sorted corrections
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak.Store(m.HeapAlloc)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsScanned != int64(n) || res.LiveBuckets != 0 || res.BucketsWritten != int64(res.Buckets) {
		t.Fatalf("result %+v", res)
	}
	buckets := assertExact(t, db, day)
	t.Logf("rebuilt %d events into %d buckets: scan %d ms (%.0f rows/s), total %d ms; live heap at the write phase %.1f MB above start (%.0f B/bucket)",
		n, buckets, res.ScanMillis, res.RowsPerSec, res.Millis, float64(peak.Load()-heapBefore)/(1<<20), float64(peak.Load()-heapBefore)/float64(max(buckets, 1)))
}

// TestRebuildDayWaitsForTheLock: a rebuild of a day whose lock another
// session holds gives up after LockWait with an error saying so.
func TestRebuildDayWaitsForTheLock(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	day := today()
	conn, err := db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var name string
	if err := conn.GetContext(ctx, &name, "SELECT DATABASE()"); err != nil {
		t.Fatal(err)
	}
	var got int
	if err := conn.GetContext(ctx, &got, "SELECT GET_LOCK(?, 1)", store.RebuildLockName(name, day)); err != nil || got != 1 {
		t.Fatalf("GET_LOCK: %d %v", got, err)
	}
	_, err = store.RebuildDay(ctx, db, day, store.RebuildOptions{LockWait: time.Second})
	if err == nil || !strings.Contains(err.Error(), "another rebuild") {
		t.Fatalf("err = %v, want one naming the other rebuild", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT RELEASE_LOCK(?)", store.RebuildLockName(name, day)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RebuildDay(ctx, db, day, store.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestSeedOffsets(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	offs := map[int32]int64{0: 5, 1: 0, 2: 17}
	if prev, err := store.SeedOffsets(ctx, db, "p", "t", offs, false); err != nil || len(prev) != 0 {
		t.Fatalf("first seed: %v %v", prev, err)
	}
	// A retry with the same offsets is fine; different ones are refused.
	if _, err := store.SeedOffsets(ctx, db, "p", "t", offs, false); err != nil {
		t.Fatalf("same offsets again: %v", err)
	}
	if _, err := store.SeedOffsets(ctx, db, "p", "t", map[int32]int64{0: 1, 1: 0, 2: 17}, false); !errors.Is(err, store.ErrOffsetsExist) {
		t.Fatalf("other offsets: %v, want ErrOffsetsExist", err)
	}
	prev, err := store.SeedOffsets(ctx, db, "p", "t", map[int32]int64{0: 1, 1: 0, 2: 17}, true)
	if err != nil || prev[0] != 5 {
		t.Fatalf("replace: %v %v", prev, err)
	}
	got, err := store.LoadOffsets(ctx, db, "p", "t")
	if err != nil || got[0] != 1 || got[2] != 17 || len(got) != 3 {
		t.Fatalf("stored %v %v", got, err)
	}
	// The writer's fence takes over from the seeded rows.
	w := &store.Writer{DB: db}
	if _, err := w.Write(ctx, &store.Batch{Pipeline: "p", Topic: "t", Offsets: []store.OffsetAdvance{{Partition: 0, From: 1, To: 2}}}); err != nil {
		t.Fatal(err)
	}
}
