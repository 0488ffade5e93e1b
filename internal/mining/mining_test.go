package mining

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
)

// The hand-checked dataset. Day D (2026-11-10), shares:
//
//	u1 Shanghai: A B C      u4 Beijing: B C
//	u2 Shanghai: A B        u5 Beijing: A A (twice)
//	u3 Beijing:  A B D      u6 (no city): D E
//	u7 Shanghai: A C
//
// plus a view by u1 of X (not a share: ignored) and, on D-1, u1 sharing E
// in Shanghai (outside the co_share window D..D).
var (
	dayD  = time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	dayD1 = dayD.AddDate(0, 0, -1)
)

func loadDataset(t *testing.T, db *sqlx.DB) {
	t.Helper()
	n := 0
	add := func(day time.Time, typ, user, item, city string) {
		n++
		at := day.Add(time.Duration(8*60+n) * time.Minute)
		if _, err := db.Exec(`INSERT INTO events (event_date, event_id, type, occurred_at, user_id, item_id, channel, city, src_partition, src_offset, ingest_id, ingested_at)
VALUES (?, ?, ?, ?, ?, ?, 'wechat', ?, 0, ?, 1, NOW(6))`, day.Format(dayLayout), fmt.Sprintf("e%d", n), typ, at, user, item, city, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []struct{ user, city, items string }{
		{"u1", "Shanghai", "A B C"}, {"u2", "Shanghai", "A B"}, {"u3", "Beijing", "A B D"}, {"u4", "Beijing", "B C"},
		{"u5", "Beijing", "A A"}, {"u6", "", "D E"}, {"u7", "Shanghai", "A C"},
	} {
		for _, it := range strings.Fields(s.items) {
			add(dayD, "share", s.user, it, s.city)
		}
	}
	add(dayD, "view", "u1", "X", "Shanghai")
	add(dayD1, "share", "u1", "E", "Shanghai")
}

func begin(t *testing.T, db *sqlx.DB, job string, from, to time.Time, p Params, wf string) Run {
	t.Helper()
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	run, err := Begin(context.Background(), db, BeginSpec{Job: job, From: from, To: to, Params: p, Shards: p.Shards, WorkflowID: wf, WorkflowRunID: "r1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func publish(t *testing.T, db *sqlx.DB, run Run, st Stats) {
	t.Helper()
	if _, err := Publish(context.Background(), db, run, st, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func rows(t *testing.T, db *sqlx.DB, q string, args ...any) string {
	t.Helper()
	r, err := db.Queryx(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		vals, err := r.SliceScan()
		if err != nil {
			t.Fatal(err)
		}
		var f []string
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				f = append(f, string(v))
			case float64:
				f = append(f, fmt.Sprintf("%.4f", v))
			case time.Time:
				f = append(f, v.Format(dayLayout))
			default:
				f = append(f, fmt.Sprint(v))
			}
		}
		out = append(out, strings.Join(f, " "))
	}
	return strings.Join(out, "\n")
}

func runTrending(t *testing.T, db *sqlx.DB, wf string) Run {
	t.Helper()
	run := begin(t, db, JobTrending, dayD1, dayD, Params{}, wf)
	var st Stats
	for d := dayD1; !d.After(dayD); d = d.AddDate(0, 0, 1) {
		s, err := TrendingDay(context.Background(), db, run, d, run.Params)
		if err != nil {
			t.Fatal(err)
		}
		st = st.Add(s)
	}
	if st.RowsIn != 17 {
		t.Fatalf("trending read %d share events, want 17", st.RowsIn)
	}
	publish(t, db, run, st)
	return run
}

func runCoShare(t *testing.T, db *sqlx.DB, wf string, shards int) Run {
	t.Helper()
	run := begin(t, db, JobCoShare, dayD, dayD, Params{Shards: shards}, wf)
	var st Stats
	for s := 0; s < shards; s++ {
		got, err := CoShareShard(context.Background(), db, run, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		st = st.Add(got)
	}
	if st.RowsIn != 16 || st.Users != 7 {
		t.Fatalf("co_share shards read %d rows of %d users, want 16 of 7", st.RowsIn, st.Users)
	}
	m, err := CoShareMerge(context.Background(), db, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.RowsOut = m.RowsOut
	publish(t, db, run, st)
	return run
}

func TestMiningJobsOnHandCheckedData(t *testing.T) {
	db, _ := mysqltest.New(t)
	loadDataset(t, db)

	tr := runTrending(t, db, "wf-trending")
	// Ties on users and shares fall to item_id; city '' is all cities.
	want := strings.Join([]string{
		"2026-11-09  1 E 1 1", "2026-11-09 Shanghai 1 E 1 1",
		"2026-11-10  1 A 5 6", "2026-11-10  2 B 4 4", "2026-11-10  3 C 3 3", "2026-11-10  4 D 2 2", "2026-11-10  5 E 1 1",
		"2026-11-10 Beijing 1 A 2 3", "2026-11-10 Beijing 2 B 2 2", "2026-11-10 Beijing 3 C 1 1", "2026-11-10 Beijing 4 D 1 1",
		"2026-11-10 Shanghai 1 A 3 3", "2026-11-10 Shanghai 2 B 2 2", "2026-11-10 Shanghai 3 C 2 2",
	}, "\n")
	if got := rows(t, db, "SELECT day, city, rank_no, item_id, users, shares FROM trending_daily ORDER BY day, city, rank_no"); got != want {
		t.Fatalf("trending_daily:\n%s\nwant:\n%s", got, want)
	}

	// N = 7 users; users(A,B,C) = 5,4,3; support AB 3, AC 2, BC 2 (AD, BD, DE
	// have 1 < min_support 2). Three shards must add up to one.
	for _, shards := range []int{1, 3} {
		cs := runCoShare(t, db, fmt.Sprintf("wf-co-%d", shards), shards)
		got := rows(t, db, "SELECT item_id, rank_no, other_item_id, support, confidence, lift FROM co_shares WHERE run_id = ? ORDER BY item_id, rank_no", cs.ID)
		want := strings.Join([]string{
			"A 1 B 3 0.6000 1.0500", // 3/5, 3*7/(5*4)
			"A 2 C 2 0.4000 0.9333", // 2/5, 2*7/(5*3)
			"B 1 A 3 0.7500 1.0500", // 3/4
			"B 2 C 2 0.5000 1.1667", // 2/4, 2*7/(4*3)
			"C 1 B 2 0.6667 1.1667", // same support as A: higher lift first
			"C 2 A 2 0.6667 0.9333",
		}, "\n")
		if got != want {
			t.Fatalf("co_shares with %d shards:\n%s\nwant:\n%s", shards, got, want)
		}
	}
	var lift float64
	if err := db.Get(&lift, "SELECT lift FROM co_shares WHERE item_id = 'B' AND other_item_id = 'C' ORDER BY run_id DESC LIMIT 1"); err != nil || math.Abs(lift-14.0/12) > 1e-12 {
		t.Fatalf("lift(B,C) = %v (%v), want exactly 14/12", lift, err)
	}

	rec := begin(t, db, JobRecommend, dayD, dayD, Params{K: 3, Shards: 2}, "wf-rec")
	var st Stats
	var cache GraphCache
	for s := 0; s < 2; s++ {
		got, err := RecommendShard(context.Background(), db, &cache, rec, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		st = st.Add(got)
	}
	publish(t, db, rec, st)
	want = strings.Join([]string{
		// u1 shared everything its neighbours and city know: nothing.
		"u2 1 C 0.9000 co_share B", // 0.4 (A→C) + 0.5 (B→C)
		"u3 1 C 0.9000 co_share B",
		"u4 1 A 1.4167 co_share B", // 0.75 + 2/3
		"u4 2 D 0.5000 trending Beijing",
		"u5 1 B 0.6000 co_share A",
		"u5 2 C 0.4000 co_share A",
		"u5 3 D 0.5000 trending Beijing",
		"u6 1 A 1.0000 trending ", // no city: the all-cities list
		"u6 2 B 0.8000 trending ",
		"u6 3 C 0.6000 trending ",
		"u7 1 B 1.2667 co_share C", // 0.6 + 2/3, via the larger
	}, "\n")
	if got := rows(t, db, "SELECT user_id, rank_no, item_id, score, reason, via FROM recommendations WHERE run_id = ? ORDER BY user_id, rank_no", rec.ID); got != want {
		t.Fatalf("recommendations:\n%s\nwant:\n%s", got, want)
	}
	var recIn Stats
	if recIn = st; recIn.Users != 7 || recIn.RowsOut != 11 {
		t.Fatalf("recommend stats %+v, want 7 users and 11 rows", st)
	}

	// Re-running trending replaces the days in one go; the stage is empty.
	tr2 := runTrending(t, db, "wf-trending-2")
	if got := rows(t, db, "SELECT DISTINCT run_id FROM trending_daily"); got != fmt.Sprint(tr2.ID) || tr2.ID == tr.ID {
		t.Fatalf("trending_daily runs after a re-run: %s (first %d, second %d)", got, tr.ID, tr2.ID)
	}
	if got := rows(t, db, "SELECT COUNT(*) FROM trending_stage"); got != "0" {
		t.Fatalf("trending_stage keeps %s rows", got)
	}
	// Only the two newest co_share runs keep partitions; partials are gone.
	runCoShare(t, db, "wf-co-again", 2)
	if got := rows(t, db, "SELECT COUNT(DISTINCT run_id) FROM co_shares"); got != "2" {
		t.Fatalf("co_shares holds %s runs, want 2", got)
	}
	if got := rows(t, db, "SELECT COUNT(*) FROM mining_partials"); got != "0" {
		t.Fatalf("mining_partials keeps %s rows", got)
	}
	if got := rows(t, db, "SELECT job, status, rows_out FROM mining_runs ORDER BY run_id"); got != strings.Join([]string{
		"trending succeeded 14", "co_share succeeded 6", "co_share succeeded 6", "recommend succeeded 11",
		"trending succeeded 14", "co_share succeeded 6"}, "\n") {
		t.Fatalf("mining_runs:\n%s", got)
	}
}

func TestBeginIsIdempotentAndRecommendNeedsCoShare(t *testing.T) {
	db, _ := mysqltest.New(t)
	ctx := context.Background()
	p := Params{}.WithDefaults()
	if _, err := Begin(ctx, db, BeginSpec{Job: JobRecommend, From: dayD, To: dayD, Params: p, WorkflowID: "w", WorkflowRunID: "r"}, time.Now()); err != ErrNoCoShareRun {
		t.Fatalf("recommend without co_share: %v, want ErrNoCoShareRun", err)
	}
	spec := BeginSpec{Job: JobCoShare, From: dayD, To: dayD, Params: p, WorkflowID: "w", WorkflowRunID: "r"}
	a, err := Begin(ctx, db, spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Begin(ctx, db, spec, time.Now())
	if err != nil || a.ID != b.ID {
		t.Fatalf("second Begin of the same attempt: run %d (%v), want %d", b.ID, err, a.ID)
	}
	// A failed run disappears: status failed, no partition.
	if err := Fail(ctx, db, a, "boom", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := rows(t, db, "SELECT status, error FROM mining_runs WHERE run_id = ?", a.ID); got != "failed boom" {
		t.Fatalf("failed run: %s", got)
	}
	if got := rows(t, db, "SELECT COUNT(*) FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'co_shares' AND PARTITION_NAME = ?", fmt.Sprintf("r%d", a.ID)); got != "0" {
		t.Fatalf("failed run keeps its partition")
	}
	if _, err := Publish(ctx, db, a, Stats{}, time.Now()); err == nil {
		t.Fatal("publishing a failed run succeeded")
	}
}

func TestPartialRoundTrip(t *testing.T) {
	s := &shardBaskets{dict: map[string]int32{}, users: map[string]*basket{}}
	for u, items := range map[string][]string{"x": {"a", "b", "c"}, "y": {"b", "c"}, "z": {"c", "d", "e", "f"}} {
		b := &basket{}
		for _, it := range items {
			b.items = append(b.items, s.item(it))
		}
		b.items = sortedDistinct(b.items)
		s.users[u] = b
	}
	p := countPairs(s, 3) // z has 4 items > 3: no pairs, still counted
	m := &merged{dict: map[string]int32{}, pairs: map[uint64]uint32{}}
	if err := m.add(p.encode()); err != nil {
		t.Fatal(err)
	}
	if err := m.add(p.encode()); err != nil { // a second identical shard doubles everything
		t.Fatal(err)
	}
	if m.users != 6 || m.itemUsers[m.dict["c"]] != 6 || m.pairs[pairKey(m.dict["b"], m.dict["c"])] != 4 || len(m.pairs) != 3 {
		t.Fatalf("merged: users %d, users(c) %d, pairs %v", m.users, m.itemUsers[m.dict["c"]], m.pairs)
	}
	if err := m.add([]byte("SCP1\x05")); err == nil {
		t.Fatal("truncated partial decoded")
	}
}
