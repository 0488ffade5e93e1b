package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
	"github.com/sluicedata/sluice/schemas"
)

func ev(id, typ, item, user string, at time.Time) schemas.Event {
	return schemas.Event{EventID: id, Type: typ, OccurredAt: at, UserID: user, ItemID: item, Channel: "wechat", City: "shanghai"}
}

func count(t *testing.T, db *sqlx.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestWriterDedupCountsAndOffsets(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	w := &store.Writer{DB: db, MaxStmtRows: 3} // small statements exercise chunking
	at := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)

	b1 := &store.Batch{Pipeline: "p", Topic: "t",
		Events: []store.EventRow{
			{Event: ev("e1", "share", "r1", "u1", at), Partition: 0, Offset: 0},
			{Event: ev("e2", "share", "r1", "u2", at.Add(10*time.Second)), Partition: 0, Offset: 1},
			{Event: ev("e1", "share", "r1", "u1", at), Partition: 0, Offset: 2}, // repeated in the batch
			{Event: ev("e3", "view", "r2", "u1", at.Add(time.Minute)), Partition: 1, Offset: 0},
			{Event: ev("e4", "share", "r1", "u3", at), Partition: 1, Offset: 1},
		},
		Dead:    []store.DeadLetter{{Partition: 1, Offset: 2, Raw: []byte("{not json"), Reason: "body: invalid JSON"}},
		Offsets: []store.OffsetAdvance{{Partition: 0, From: -1, To: 3}, {Partition: 1, From: -1, To: 3}},
	}
	res, err := w.Write(ctx, b1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 4 || res.Duplicates != 1 || res.DeadLetters != 1 {
		t.Fatalf("first batch result = %+v, want 4 inserted, 1 duplicate, 1 dead letter", res)
	}
	// Redelivery of e2 and e4 under new offsets, plus one new event.
	b2 := &store.Batch{Pipeline: "p", Topic: "t",
		Events: []store.EventRow{
			{Event: ev("e2", "share", "r1", "u2", at.Add(10*time.Second)), Partition: 0, Offset: 3},
			{Event: ev("e5", "share", "r1", "u5", at), Partition: 0, Offset: 4},
			{Event: ev("e4", "share", "r1", "u3", at), Partition: 1, Offset: 3},
		},
		Offsets: []store.OffsetAdvance{{Partition: 0, From: 3, To: 5}, {Partition: 1, From: 3, To: 4}},
	}
	res, err = w.Write(ctx, b2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 1 || res.Duplicates != 2 {
		t.Fatalf("second batch result = %+v, want 1 inserted, 2 duplicates", res)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM events"); n != 5 {
		t.Fatalf("events = %d, want 5", n)
	}
	if n := count(t, db, "SELECT SUM(cnt) FROM item_counts_minute WHERE type = 'share' AND item_id = 'r1'"); n != 4 {
		t.Fatalf("share count of r1 = %d, want 4 (e1, e2, e4, e5 once each)", n)
	}
	if n := count(t, db, "SELECT cnt FROM item_counts_minute WHERE type = 'share' AND item_id = 'r1' AND minute_start = ?", at); n != 4 {
		t.Fatalf("share count of r1 in minute %s = %d, want 4", at, n)
	}
	if n := count(t, db, "SELECT SUM(cnt) FROM item_counts_minute WHERE type = 'view'"); n != 1 {
		t.Fatalf("view count = %d, want 1", n)
	}
	offs, err := store.LoadOffsets(ctx, db, "p", "t")
	if err != nil {
		t.Fatal(err)
	}
	if offs[0] != 5 || offs[1] != 4 || len(offs) != 2 {
		t.Fatalf("offsets = %v, want map[0:5 1:4]", offs)
	}
	var dl struct {
		Raw    []byte `db:"raw"`
		Reason string `db:"reason"`
	}
	if err := db.Get(&dl, "SELECT raw, reason FROM dead_letters WHERE topic = 't' AND kafka_partition = 1 AND kafka_offset = 2"); err != nil {
		t.Fatal(err)
	}
	if string(dl.Raw) != "{not json" || dl.Reason != "body: invalid JSON" {
		t.Fatalf("dead letter = %q / %q", dl.Raw, dl.Reason)
	}
	var src struct {
		P int32 `db:"src_partition"`
		O int64 `db:"src_offset"`
	}
	if err := db.Get(&src, "SELECT src_partition, src_offset FROM events WHERE event_id = 'e5'"); err != nil || src.P != 0 || src.O != 4 {
		t.Fatalf("lineage of e5 = %+v, %v; want partition 0 offset 4", src, err)
	}
}

func TestWriterFencesStaleAttempt(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	w := &store.Writer{DB: db}
	at := time.Now().UTC()
	first := &store.Batch{Pipeline: "p", Topic: "t",
		Events:  []store.EventRow{{Event: ev("a1", "share", "r1", "u1", at), Partition: 0, Offset: 0}},
		Offsets: []store.OffsetAdvance{{Partition: 0, From: -1, To: 1}}}
	if _, err := w.Write(ctx, first); err != nil {
		t.Fatal(err)
	}
	// A zombie attempt that also believed the partition was new.
	zombie := &store.Batch{Pipeline: "p", Topic: "t",
		Events:  []store.EventRow{{Event: ev("a2", "share", "r1", "u2", at), Partition: 0, Offset: 0}},
		Offsets: []store.OffsetAdvance{{Partition: 0, From: -1, To: 1}}}
	if _, err := w.Write(ctx, zombie); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("zombie insert: err = %v, want ErrFenced", err)
	}
	// And one that started from a position that has moved on.
	zombie.Offsets = []store.OffsetAdvance{{Partition: 0, From: 0, To: 1}}
	if _, err := w.Write(ctx, zombie); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("zombie update: err = %v, want ErrFenced", err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM events"); n != 1 {
		t.Fatalf("events = %d, want 1: a fenced batch must write nothing", n)
	}
	if n := count(t, db, "SELECT SUM(cnt) FROM item_counts_minute"); n != 1 {
		t.Fatalf("counts = %d, want 1", n)
	}
}

func TestWriterConcurrentAttemptsCommitOnce(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	w := &store.Writer{DB: db}
	at := time.Now().UTC()
	var events []store.EventRow
	for i := 0; i < 200; i++ {
		events = append(events, store.EventRow{Event: ev(fmt.Sprintf("c%d", i), "share", "r1", "u1", at), Partition: 0, Offset: int64(i)})
	}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.Write(ctx, &store.Batch{Pipeline: "p", Topic: "t", Events: events,
				Offsets: []store.OffsetAdvance{{Partition: 0, From: -1, To: 200}}})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrFenced):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d attempts committed, want exactly 1", ok)
	}
	if n := count(t, db, "SELECT SUM(cnt) FROM item_counts_minute"); n != 200 {
		t.Fatalf("counts = %d, want 200", n)
	}
}

func TestWriterParksRowsMySQLRefuses(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	w := &store.Writer{DB: db}
	at := time.Now().UTC()
	bad := ev("b2", "share", "r1", strings.Repeat("u", 80), at) // longer than user_id VARCHAR(64)
	b := &store.Batch{Pipeline: "p", Topic: "t",
		Events: []store.EventRow{
			{Event: ev("b1", "share", "r1", "u1", at), Partition: 0, Offset: 0},
			{Event: bad, Partition: 0, Offset: 1},
			{Event: ev("b3", "share", "r1", "u3", at), Partition: 0, Offset: 2},
		},
		Offsets: []store.OffsetAdvance{{Partition: 0, From: -1, To: 3}}}
	res, err := w.Write(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 2 || res.DeadLetters != 1 || res.Duplicates != 0 {
		t.Fatalf("result = %+v, want 2 inserted and 1 dead letter", res)
	}
	var reason string
	if err := db.Get(&reason, "SELECT reason FROM dead_letters WHERE kafka_offset = 1"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "user_id") {
		t.Fatalf("reason %q should name the column", reason)
	}
	if n := count(t, db, "SELECT SUM(cnt) FROM item_counts_minute"); n != 2 {
		t.Fatalf("counts = %d, want 2", n)
	}
}

func TestEnsurePartitions(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	parts, err := store.ListPartitions(ctx, db, "events")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 10 { // yesterday, today, 7 ahead = 9 days, plus pmax
		t.Fatalf("got %d partitions %v, want 10", len(parts), parts)
	}
	if parts[0].Name != store.PartitionName(now.AddDate(0, 0, -1)) || parts[9].Name != "pmax" {
		t.Fatalf("partitions = %v", parts)
	}
	added, err := store.EnsureStreamPartitions(ctx, db, now, 7)
	if err != nil {
		t.Fatal(err)
	}
	for table, a := range added {
		if len(a) != 0 {
			t.Fatalf("second run added %v to %s, want nothing", a, table)
		}
	}
	// Concurrent callers asking for more days ahead add each day once.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := store.EnsureDailyPartitions(ctx, db, "events", now, now.AddDate(0, 0, 12)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	parts, err = store.ListPartitions(ctx, db, "events")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 15 || parts[13].Name != store.PartitionName(now.AddDate(0, 0, 12)) {
		t.Fatalf("after extending: %v", parts)
	}
	// Rows of an old date land in the first partition, not the catch-all.
	old := now.AddDate(0, 0, -30)
	w := &store.Writer{DB: db}
	if _, err := w.Write(ctx, &store.Batch{Pipeline: "p", Topic: "t",
		Events:  []store.EventRow{{Event: ev("old", "share", "r1", "u1", old)}},
		Offsets: []store.OffsetAdvance{{Partition: 0, From: -1, To: 1}}}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM events PARTITION (pmax)"); n != 0 {
		t.Fatalf("pmax holds %d rows, want 0", n)
	}
}

// TestWriterRendersValuesExactly: the statements (INSERT and LOAD DATA) are
// rendered in Go, so awkward strings and times must come back byte for byte.
func TestWriterRendersValuesExactly(t *testing.T) {
	for _, noLoad := range []bool{false, true} {
		t.Run(fmt.Sprintf("no_load_data=%v", noLoad), func(t *testing.T) { testRendersValues(t, noLoad) })
	}
}

func testRendersValues(t *testing.T, noLoad bool) {
	db, _ := mysqltest.New(t)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	e := schemas.Event{EventID: "odd:1", Type: "share", OccurredAt: at, UserID: `u'1"\x`, ItemID: "r\n\r\t\\0",
		Channel: "微信", City: "上海 'old town'", Attrs: []byte(`{"note":"it's \"quoted\" \\ and\u0000nul","emoji":"🍜"}`)}
	w := &store.Writer{DB: db, NoLoadData: noLoad}
	res, err := w.Write(context.Background(), &store.Batch{Pipeline: "p", Topic: "t",
		Events:  []store.EventRow{{Event: e, Partition: 3, Offset: 41}, {Event: ev("plain", "view", "r1", "u1", at), Partition: 3, Offset: 42}},
		Offsets: []store.OffsetAdvance{{Partition: 3, From: -1, To: 43}}})
	if err != nil || res.Inserted != 2 {
		t.Fatalf("write: %+v %v", res, err)
	}
	// The same rows again under new offsets: duplicates, nothing counted twice.
	res, err = w.Write(context.Background(), &store.Batch{Pipeline: "p", Topic: "t",
		Events:  []store.EventRow{{Event: e, Partition: 3, Offset: 43}, {Event: ev("plain", "view", "r1", "u1", at), Partition: 3, Offset: 44}},
		Offsets: []store.OffsetAdvance{{Partition: 3, From: 43, To: 45}}})
	if err != nil || res.Inserted != 0 || res.Duplicates != 2 {
		t.Fatalf("redelivery: %+v %v", res, err)
	}
	var got struct {
		User, Item, Channel, City, Attrs string
		At                               time.Time
		Part, Off                        int64
	}
	if err := db.QueryRow("SELECT user_id, item_id, channel, city, attrs, occurred_at, src_partition, src_offset FROM events WHERE event_id = 'odd:1'").
		Scan(&got.User, &got.Item, &got.Channel, &got.City, &got.Attrs, &got.At, &got.Part, &got.Off); err != nil {
		t.Fatal(err)
	}
	if got.User != e.UserID || got.Item != e.ItemID || got.Channel != e.Channel || got.City != e.City || got.Attrs != string(e.Attrs) ||
		!got.At.Equal(at) || got.Part != 3 || got.Off != 41 {
		t.Fatalf("stored %+v, want %+v", got, e)
	}
	var city string
	var cnt int64
	if err := db.QueryRow("SELECT city, cnt FROM item_counts_minute WHERE item_id = ?", e.ItemID).Scan(&city, &cnt); err != nil || city != e.City || cnt != 1 {
		t.Fatalf("count row: %q %d %v", city, cnt, err)
	}
}

// redelivery returns a first batch of 100 new events and a second one that
// redelivers all 100 under new offsets with 50 new events interleaved (one
// after every second duplicate), so most LOAD DATA chunks mix skipped and
// new rows. Every event has an item of its own, so a wrong choice of which
// rows were new shows in item_counts_minute even when the total is right;
// events alternate between today and yesterday, so the duplicate-key
// warnings carry two dates.
func redelivery(at time.Time) (first, second *store.Batch) {
	old := func(i int) schemas.Event {
		return ev(fmt.Sprintf("d%d", i), "share", fmt.Sprintf("old%d", i), "u1", at.Add(-time.Duration(i%2)*24*time.Hour))
	}
	first = &store.Batch{Pipeline: "p", Topic: "t", Offsets: []store.OffsetAdvance{{Partition: 0, From: -1, To: 100}}}
	for i := 0; i < 100; i++ {
		first.Events = append(first.Events, store.EventRow{Event: old(i), Partition: 0, Offset: int64(i)})
	}
	second = &store.Batch{Pipeline: "p", Topic: "t", Offsets: []store.OffsetAdvance{{Partition: 0, From: 100, To: 250}}}
	off := int64(100)
	add := func(e schemas.Event) {
		second.Events = append(second.Events, store.EventRow{Event: e, Partition: 0, Offset: off})
		off++
	}
	for i := 0; i < 100; i++ {
		add(old(i))
		if i%2 == 1 {
			n := i / 2
			add(ev(fmt.Sprintf("n%d", n), "share", fmt.Sprintf("new%d", n), "u2", at.Add(-time.Duration(n%2)*24*time.Hour)))
		}
	}
	return first, second
}

// checkRedelivered asserts the database holds the 150 events of
// redelivery once each and counted once each.
func checkRedelivered(t *testing.T, db *sqlx.DB) {
	t.Helper()
	if n := count(t, db, "SELECT COUNT(*) FROM events"); n != 150 {
		t.Fatalf("events = %d, want 150", n)
	}
	if n := count(t, db, "SELECT SUM(cnt) FROM item_counts_minute"); n != 150 {
		t.Fatalf("SUM(cnt) = %d, want 150", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM item_counts_minute WHERE cnt = 1"); n != 150 {
		t.Fatalf("count rows with cnt = 1: %d, want 150 (one per item)", n)
	}
	if n := count(t, db, "SELECT SUM(cnt) FROM item_counts_minute WHERE item_id LIKE 'new%'"); n != 50 {
		t.Fatalf("counts of the new items = %d, want 50", n)
	}
	// The redelivered copies must not have replaced the stored rows, and the
	// new events keep the offsets they came with.
	if n := count(t, db, "SELECT COUNT(*) FROM events WHERE event_id LIKE 'd%' AND src_offset < 100"); n != 100 {
		t.Fatalf("original events with their first offsets = %d, want 100", n)
	}
	if n := count(t, db, "SELECT src_offset FROM events WHERE event_id = 'n0'"); n != 102 {
		t.Fatalf("src_offset of n0 = %d, want 102", n)
	}
	offs, err := store.LoadOffsets(context.Background(), db, "p", "t")
	if err != nil {
		t.Fatal(err)
	}
	if offs[0] != 250 {
		t.Fatalf("offsets = %v, want partition 0 at 250", offs)
	}
}

// TestWriterRedeliveryStaysOnLoadData: with max_error_count raised by
// ParseDSN, SHOW WARNINGS names every duplicate LOAD DATA skipped, so a
// redelivery of many duplicates mixed with new events is written by LOAD
// DATA alone (no redo with INSERT, no ingest_id lookups) and exactly once.
func TestWriterRedeliveryStaysOnLoadData(t *testing.T) {
	for _, maxLoad := range []int{0, 7} { // 0: default, one statement; 7: 22 statements
		t.Run(fmt.Sprintf("max_load_rows=%d", maxLoad), func(t *testing.T) {
			db, _ := mysqltest.New(t)
			ctx := context.Background()
			var mec int
			if err := db.Get(&mec, "SELECT @@session.max_error_count"); err != nil || mec != 65535 {
				t.Fatalf("session max_error_count = %d (%v), want 65535 from ParseDSN", mec, err)
			}
			w := &store.Writer{DB: db, MaxLoadRows: maxLoad}
			first, second := redelivery(time.Now().UTC().Add(-time.Minute))
			res, err := w.Write(ctx, first)
			if err != nil || res.Inserted != 100 || res.Duplicates != 0 {
				t.Fatalf("first: %+v %v; want 100 inserted", res, err)
			}
			res, err = w.Write(ctx, second)
			if err != nil {
				t.Fatal(err)
			}
			if res.Inserted != 50 || res.Duplicates != 100 || res.DeadLetters != 0 || res.CountRows != 50 {
				t.Fatalf("redelivery: %+v; want 50 inserted, 100 duplicates, 50 count rows", res)
			}
			if st := w.Stats(); st != (store.WriterStats{}) {
				t.Fatalf("stats = %+v, want no redo, no row-by-row, no lookups", st)
			}
			checkRedelivered(t, db)
		})
	}
}

// TestWriterFewKeptWarningsRedoExactly: a session keeping only 64 warnings
// (an explicit max_error_count in the DSN wins over ParseDSN's) cannot show
// 100 skipped duplicates, so LOAD DATA's result is unsure: the batch is
// rolled back and redone with INSERT, still exactly once.
func TestWriterFewKeptWarningsRedoExactly(t *testing.T) {
	_, dsn := mysqltest.New(t)
	ctx := context.Background()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["max_error_count"] = "64"
	db, err := store.Open(ctx, cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mec int
	if err := db.Get(&mec, "SELECT @@session.max_error_count"); err != nil || mec != 64 {
		t.Fatalf("session max_error_count = %d (%v), want 64 from the DSN", mec, err)
	}
	w := &store.Writer{DB: db}
	first, second := redelivery(time.Now().UTC().Add(-time.Minute))
	if res, err := w.Write(ctx, first); err != nil || res.Inserted != 100 {
		t.Fatalf("first: %+v %v; want 100 inserted", res, err)
	}
	if st := w.Stats(); st != (store.WriterStats{}) {
		t.Fatalf("stats after a batch of new events = %+v, want zero", st)
	}
	res, err := w.Write(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 50 || res.Duplicates != 100 || res.DeadLetters != 0 || res.CountRows != 50 {
		t.Fatalf("redelivery: %+v; want 50 inserted, 100 duplicates, 50 count rows", res)
	}
	// Redone once with INSERT, whose one statement found its new rows by
	// ingest_id.
	if st := w.Stats(); st != (store.WriterStats{LoadRedone: 1, Lookups: 1}) {
		t.Fatalf("stats = %+v, want LoadRedone 1, Lookups 1", st)
	}
	checkRedelivered(t, db)
}

// TestWriterInBatchDuplicateFirstWins: of two events with one key in a
// batch, the first is stored and counted, whichever way the batch is
// written (LOAD DATA drops the second itself, INSERT after the writer's
// in-batch map), and LOAD DATA's warnings name the dropped row without a
// lookup.
func TestWriterInBatchDuplicateFirstWins(t *testing.T) {
	for _, noLoad := range []bool{false, true} {
		t.Run(fmt.Sprintf("no_load_data=%v", noLoad), func(t *testing.T) {
			db, _ := mysqltest.New(t)
			ctx := context.Background()
			w := &store.Writer{DB: db, NoLoadData: noLoad}
			at := time.Now().UTC().Truncate(time.Minute).Add(-time.Minute)
			b := &store.Batch{Pipeline: "p", Topic: "t",
				Events: []store.EventRow{
					{Event: ev("d1", "share", "first", "u1", at), Partition: 0, Offset: 0},
					{Event: ev("d2", "share", "other", "u2", at), Partition: 0, Offset: 1},
					{Event: ev("d1", "share", "second", "u1", at), Partition: 0, Offset: 2},
				},
				Offsets: []store.OffsetAdvance{{Partition: 0, From: -1, To: 3}},
			}
			res, err := w.Write(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if res.Inserted != 2 || res.Duplicates != 1 {
				t.Fatalf("result = %+v, want 2 inserted, 1 duplicate", res)
			}
			var stored struct {
				Item   string `db:"item_id"`
				Offset int64  `db:"src_offset"`
			}
			if err := db.Get(&stored, "SELECT item_id, src_offset FROM events WHERE event_id = 'd1'"); err != nil {
				t.Fatal(err)
			}
			if stored.Item != "first" || stored.Offset != 0 {
				t.Fatalf("stored d1 = %+v, want item first from offset 0", stored)
			}
			if n := count(t, db, "SELECT COALESCE(SUM(cnt), 0) FROM item_counts_minute WHERE item_id = 'second'"); n != 0 {
				t.Fatalf("count of item second = %d, want 0 (its event was a duplicate)", n)
			}
			if n := count(t, db, "SELECT SUM(cnt) FROM item_counts_minute WHERE item_id IN ('first', 'other')"); n != 2 {
				t.Fatalf("counts of first and other = %d, want 2", n)
			}
			if st := w.Stats(); st.Lookups != 0 || st.LoadRedone != 0 {
				t.Fatalf("writer stats = %+v, want no lookups or redone loads", st)
			}
		})
	}
}
