package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/loadgen"
	"github.com/sluicedata/sluice/internal/mining"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/internal/testutil/miningdata"
	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
	"github.com/sluicedata/sluice/workflows"
)

// TestMiningSurvivesWorkerKill: a co_share -> recommend run whose worker
// process is SIGKILLed while its shards run finishes on a new worker with
// exactly the results of an undisturbed run over the same events (pieces are
// idempotent: each replaces its own output), and the killed attempt leaves
// no partial run visible.
func TestMiningSurvivesWorkerKill(t *testing.T) {
	cfg, db, dsn := newStackConfig(t, false)
	cfg.NoWorker, cfg.NoPipeline = true, true
	s := startStack(t, cfg)
	defer stopStack(t, s)
	ctx := context.Background()

	w := startWorker(t, s, dsn, "miner-0")
	lg := loadgen.DefaultConfig()
	lg.Count, lg.DuplicateRatio, lg.BadRatio, lg.Seed, lg.BatchSize, lg.RunID = 60000, 0, 0, 33, 2000, "mine"
	lg.Users, lg.Items, lg.Spread = 3000, 400, 20*time.Hour
	produce(t, s, cfg.Topic, lg)
	startPipeline(t, s, workflows.StreamIngestInput{ConsumeInput: activities.ConsumeInput{Pipeline: "default", Topic: cfg.Topic}})
	waitCaughtUp(t, s, db, cfg.Topic, 120*time.Second)

	in := workflows.MiningInput{Jobs: []string{mining.JobCoShare, mining.JobRecommend}, LookbackDays: 2,
		Parallelism: 2, HeartbeatTimeoutSeconds: 3, Params: mining.Params{Shards: 16}}
	start := func() client.WorkflowRun {
		run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.DefaultTaskQueue}, workflows.MiningName, in)
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	var clean workflows.MiningResult
	if err := start().Get(ctx, &clean); err != nil {
		t.Fatalf("undisturbed run: %v", err)
	}

	// The same run again; kill the worker while a recommend shard runs.
	run := start()
	deadline := time.Now().Add(60 * time.Second)
	for !shardRunning(t, s.Client, run, activities.MiningRecommendShardName) {
		if time.Now().After(deadline) {
			t.Fatalf("no recommend shard seen running; worker log:\n%s", w.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.kill()
	t.Logf("killed the worker while a recommend shard ran")
	// Readers still see the first run while the second is unfinished.
	if got := queryInt(t, db, "SELECT MAX(run_id) FROM mining_runs WHERE job = 'recommend' AND status = 'succeeded'"); got != clean.Runs[1].RunID {
		t.Fatalf("current recommend run during the second = %d, want the first (%d)", got, clean.Runs[1].RunID)
	}
	startWorker(t, s, dsn, "miner-1")
	var again workflows.MiningResult
	if err := run.Get(ctx, &again); err != nil {
		t.Fatalf("run after the kill: %v", err)
	}

	sum := func(table, key string, runID int64) string {
		var n, h int64
		if err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', %s))), 0) FROM %s WHERE run_id = ?", key, table), runID).Scan(&n, &h); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d rows, sum %d", n, h)
	}
	coCols := "item_id, rank_no, other_item_id, support, ROUND(confidence, 9), ROUND(lift, 9)"
	recCols := "user_id, rank_no, item_id, ROUND(score, 9), reason, via"
	if a, b := sum("co_shares", coCols, clean.Runs[0].RunID), sum("co_shares", coCols, again.Runs[0].RunID); a != b || clean.Runs[0].Stats.RowsOut == 0 {
		t.Fatalf("co_shares: undisturbed %s, after the kill %s", a, b)
	}
	if a, b := sum("recommendations", recCols, clean.Runs[1].RunID), sum("recommendations", recCols, again.Runs[1].RunID); a != b || clean.Runs[1].Stats.RowsOut == 0 {
		t.Fatalf("recommendations: undisturbed %s, after the kill %s", a, b)
	}
	retried := retriedActivities(t, s.Client, run)
	if retried == 0 {
		t.Fatal("no activity of the killed run was retried: the kill missed the shards")
	}
	if got := queryInt(t, db, "SELECT COUNT(*) FROM mining_runs WHERE status <> 'succeeded'"); got != 0 {
		t.Fatalf("%d mining runs not succeeded", got)
	}
	t.Logf("co_share %d rows, recommend %d rows, identical after a worker kill (%d activities retried)", again.Runs[0].Stats.RowsOut, again.Runs[1].Stats.RowsOut, retried)
}

// retriedActivities counts the activity attempts after the first in the
// run's history.
func retriedActivities(t *testing.T, c client.Client, run client.WorkflowRun) int {
	t.Helper()
	retried := 0
	iter := c.GetWorkflowHistory(context.Background(), run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && a.GetAttempt() > 1 {
			retried++
		}
	}
	return retried
}

// shardRunning reports whether the run has a started activity of type name.
func shardRunning(t *testing.T, c client.Client, run client.WorkflowRun, name string) bool {
	t.Helper()
	d, err := c.DescribeWorkflowExecution(context.Background(), run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range d.GetPendingActivities() {
		if a.GetActivityType().GetName() == name && a.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
			return true
		}
	}
	return false
}

// TestMiningWaitsOutMySQLDown: MySQL stops just as a trending -> co_share ->
// recommend run starts; the pieces fail, Temporal retries them with
// backoff, and once MySQL is back the run completes with exactly the
// hand-worked results.
func TestMiningWaitsOutMySQLDown(t *testing.T) {
	mysqld := mysqltest.StartPrivate(t)
	dsn := mysqld.NewDB(t, "sluice")
	cfg, _, _ := newStackConfig(t, false)
	cfg.MySQLDSN = dsn
	cfg.NoPipeline = true
	s := startStack(t, cfg)
	defer stopStack(t, s)
	ctx := t.Context()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for i, e := range miningdata.Events(today, "down-") {
		if _, err := db.Exec(`INSERT INTO events (event_date, event_id, type, occurred_at, user_id, item_id, channel, city, src_partition, src_offset, ingest_id, ingested_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 1, NOW(6))`, e.OccurredAt.Format("2006-01-02"), e.EventID, e.Type, e.OccurredAt, e.UserID, e.ItemID, e.Channel, e.City, i); err != nil {
			t.Fatal(err)
		}
	}

	mysqld.Stop()
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.DefaultTaskQueue}, workflows.MiningName,
		workflows.MiningInput{Jobs: []string{mining.JobTrending, mining.JobCoShare, mining.JobRecommend}, FromDay: today.Format("2006-01-02"),
			Params: mining.Params{K: 3, Shards: 3}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * time.Second)
	mysqld.Start()
	var res workflows.MiningResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("mining after MySQL came back: %v", err)
	}
	if n := retriedActivities(t, s.Client, run); n == 0 {
		t.Fatal("no activity was retried: MySQL was not down when the run started")
	}
	// from_day = today: trending covers only D (D-1's row stays out).
	wantTrending := miningdata.Trending(today)
	wantTrending = wantTrending[strings.Index(wantTrending, today.Format("2006-01-02")):]
	if got := miningdata.Rows(t, db, "SELECT day, city, rank_no, item_id, users, shares FROM trending_daily ORDER BY day, city, rank_no"); got != wantTrending {
		t.Fatalf("trending_daily:\n%s\nwant:\n%s", got, wantTrending)
	}
	if got := miningdata.Rows(t, db, "SELECT item_id, rank_no, other_item_id, support, confidence, lift FROM co_shares WHERE run_id = ? ORDER BY item_id, rank_no", res.Runs[1].RunID); got != miningdata.CoShares {
		t.Fatalf("co_shares:\n%s\nwant:\n%s", got, miningdata.CoShares)
	}
	if got := miningdata.Rows(t, db, "SELECT user_id, rank_no, item_id, score, reason, via FROM recommendations WHERE run_id = ? ORDER BY user_id, rank_no", res.Runs[2].RunID); got != miningdata.Recommendations {
		t.Fatalf("recommendations:\n%s\nwant:\n%s", got, miningdata.Recommendations)
	}
}
