package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestWriterManyDuplicatesFallBackToInsert: LOAD DATA reports at most 64
// warnings in detail; a redelivery of more rows than that cannot be proven
// to be duplicates only, so the batch is redone with INSERT, exactly once.
func TestWriterManyDuplicatesFallBackToInsert(t *testing.T) {
	db, _ := mysqltest.New(t)
	w := &store.Writer{DB: db}
	at := time.Now().UTC().Add(-time.Minute)
	batch := func(from int64) *store.Batch {
		b := &store.Batch{Pipeline: "p", Topic: "t", Offsets: []store.OffsetAdvance{{Partition: 0, From: from, To: from + 100}}}
		if from == 0 {
			b.Offsets[0].From = -1
		}
		for i := 0; i < 100; i++ {
			b.Events = append(b.Events, store.EventRow{Event: ev(fmt.Sprintf("d%d", i), "share", "r1", "u1", at), Partition: 0, Offset: from + int64(i)})
		}
		return b
	}
	if res, err := w.Write(context.Background(), batch(0)); err != nil || res.Inserted != 100 {
		t.Fatalf("first: %+v %v", res, err)
	}
	if res, err := w.Write(context.Background(), batch(100)); err != nil || res.Inserted != 0 || res.Duplicates != 100 {
		t.Fatalf("redelivery: %+v %v", res, err)
	}
	if n := count(t, db, "SELECT SUM(cnt) FROM item_counts_minute"); n != 100 {
		t.Fatalf("counts = %d, want 100", n)
	}
}
