package mining

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/testutil/miningdata"
	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
)

var (
	dayD  = time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	dayD1 = dayD.AddDate(0, 0, -1)
)

func loadDataset(t *testing.T, db *sqlx.DB) {
	t.Helper()
	for i, e := range miningdata.Events(dayD, "e") {
		if _, err := db.Exec(`INSERT INTO events (event_date, event_id, type, occurred_at, user_id, item_id, channel, city, src_partition, src_offset, ingest_id, ingested_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 1, NOW(6))`, e.OccurredAt.Format(dayLayout), e.EventID, e.Type, e.OccurredAt, e.UserID, e.ItemID, e.Channel, e.City, i); err != nil {
			t.Fatal(err)
		}
	}
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
	return miningdata.Rows(t, db, q, args...)
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
	if st.RowsIn != miningdata.Shares {
		t.Fatalf("trending read %d share events, want %d", st.RowsIn, miningdata.Shares)
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
	if st.RowsIn != miningdata.SharesOnD || st.Users != miningdata.ShareUsers {
		t.Fatalf("co_share shards read %d rows of %d users, want %d of %d", st.RowsIn, st.Users, miningdata.SharesOnD, miningdata.ShareUsers)
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
	want := miningdata.Trending(dayD)
	if got := rows(t, db, "SELECT day, city, rank_no, item_id, users, shares FROM trending_daily ORDER BY day, city, rank_no"); got != want {
		t.Fatalf("trending_daily:\n%s\nwant:\n%s", got, want)
	}

	// Three shards must add up to one.
	for _, shards := range []int{1, 3} {
		cs := runCoShare(t, db, fmt.Sprintf("wf-co-%d", shards), shards)
		got := rows(t, db, "SELECT item_id, rank_no, other_item_id, support, confidence, lift FROM co_shares WHERE run_id = ? ORDER BY item_id, rank_no", cs.ID)
		want := miningdata.CoShares
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
	want = miningdata.Recommendations
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
