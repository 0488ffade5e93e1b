package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/internal/devstack"
	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/loadgen"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/workflows"
)

func backfillStatus(t *testing.T, s *devstack.Stack, id string) workflows.BackfillStatus {
	t.Helper()
	v, err := s.Client.QueryWorkflow(context.Background(), id, "", workflows.QueryStatus)
	if err != nil {
		t.Fatalf("status query: %v", err)
	}
	var st workflows.BackfillStatus
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// assertCountsExact checks item_counts_minute against the recomputation
// from events over the days around now, and returns the bucket count.
func assertCountsExact(t *testing.T, db *sqlx.DB) int {
	t.Helper()
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour)
	from, to := day.AddDate(0, 0, -1), day.AddDate(0, 0, 2)
	re, err := store.Recompute(ctx, db, from, to)
	if err != nil {
		t.Fatal(err)
	}
	live, err := store.LiveCounts(ctx, db, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if d := store.Diff(live, re); len(d) > 0 {
		t.Fatalf("item_counts_minute differs from the recomputation in %d buckets, first %+v", len(d), d[0])
	}
	if n, m := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute"), queryInt(t, db, "SELECT COUNT(*) FROM events"); n != m {
		t.Fatalf("sum of counts %d, events %d", n, m)
	}
	return len(re)
}

// TestBackfillRebuildWhileStreaming streams events, corrupts the live
// aggregates, then rebuilds yesterday and today with BackfillWorkflow while
// more events keep streaming into today: after catch-up the aggregates
// equal the recomputation exactly.
func TestBackfillRebuildWhileStreaming(t *testing.T) {
	cfg, db, _ := newStackConfig(t, false)
	s := startStack(t, cfg)
	defer stopStack(t, s)
	ctx := context.Background()

	lg := loadgen.DefaultConfig()
	lg.Count, lg.DuplicateRatio, lg.BadRatio, lg.Seed, lg.Spread, lg.RunID, lg.BatchSize = 30000, 0.05, 0.01, 71, 20*time.Minute, "rb1", 1000
	produce(t, s, cfg.Topic, lg)
	waitCaughtUp(t, s, db, cfg.Topic, 90*time.Second)
	assertCountsExact(t, db)

	// Drift: counts off, buckets lost, one invented.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var minute time.Time
	if err := db.Get(&minute, "SELECT MAX(minute_start) FROM item_counts_minute"); err != nil {
		t.Fatal(err)
	}
	off := queryInt(t, db, "SELECT COUNT(*) FROM item_counts_minute WHERE minute_start = ?", minute)
	if _, err := db.Exec("UPDATE item_counts_minute SET cnt = cnt + 3 WHERE minute_start = ?", minute); err != nil {
		t.Fatal(err)
	}
	r, err := db.Exec("DELETE FROM item_counts_minute WHERE minute_start = ? - INTERVAL 1 MINUTE", minute)
	if err != nil {
		t.Fatal(err)
	}
	lost, _ := r.RowsAffected()
	if _, err := db.Exec("INSERT INTO item_counts_minute (event_date, minute_start, type, item_id, channel, city, cnt, updated_at) VALUES (?, ?, 'share', 'ghost', 'qq', 'x', 7, NOW())",
		minute.Format("2006-01-02"), minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("corrupted: %d buckets off by 3, %d lost, 1 invented", off, lost)

	// More events stream into today while the rebuild runs.
	produced := make(chan loadgen.Stats, 1)
	go func() {
		lg2 := loadgen.DefaultConfig()
		lg2.Count, lg2.DuplicateRatio, lg2.BadRatio, lg2.Seed, lg2.Spread, lg2.RunID, lg2.Rate, lg2.BatchSize = 15000, 0.05, 0.01, 72, 2*time.Minute, "rb2", 3000, 100
		produced <- produce(t, s, cfg.Topic, lg2)
	}()
	rb2 := func() int64 { return queryInt(t, db, "SELECT COUNT(*) FROM events WHERE event_id LIKE 'rb2-%'") }
	deadline := time.Now().Add(30 * time.Second)
	for rb2() < 1000 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}

	in := workflows.BackfillInput{Mode: "rebuild", FromDay: today.AddDate(0, 0, -1).Format("2006-01-02"), ToDay: today.Format("2006-01-02")}
	// A rebuild takes about 0.1 s; the stream commits a batch every 0.1 s or
	// so. Rebuild again (each run must be exact on its own) until one has
	// overlapped a commit, at most five times while the stream lasts.
	overlapped := false
	for attempt := 1; attempt <= 5 && !overlapped; attempt++ {
		id := fmt.Sprintf("backfill-rebuild-test-%d", attempt)
		before, started := rb2(), time.Now()
		run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.DefaultTaskQueue}, workflows.BackfillName, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.BackfillStatus
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("rebuild: %v", err)
		}
		took := time.Since(started)
		during := rb2() - before
		t.Logf("rebuild %d of 2 days took %s while %d streamed events were committed; result %+v", attempt, took.Round(time.Millisecond), during, res)
		if res.Phase != "done" || res.DaysDone != 2 || res.DaysTotal != 2 || len(res.Days) != 2 {
			t.Fatalf("result %+v", res)
		}
		if attempt == 1 && res.Drifted < off+lost+1 {
			t.Errorf("drifted buckets %d, want at least %d", res.Drifted, off+lost+1)
		}
		if st := backfillStatus(t, s, id); st.Phase != "done" || st.DaysDone != 2 {
			t.Errorf("status after the run: %+v", st)
		}
		overlapped = during > 0
	}
	if !overlapped {
		t.Errorf("no streamed event was committed during any of the rebuilds: the test proves nothing")
	}

	stats := <-produced
	waitCaughtUp(t, s, db, cfg.Topic, 90*time.Second)
	if got := rb2(); got != int64(stats.Valid) {
		t.Errorf("rb2 events %d, want %d", got, stats.Valid)
	}
	n := assertCountsExact(t, db)
	if g := queryInt(t, db, "SELECT COUNT(*) FROM item_counts_minute WHERE item_id = 'ghost'"); g != 0 {
		t.Errorf("invented bucket still there")
	}
	t.Logf("%d buckets exact after catch-up", n)
}

// TestBackfillKafkaHandover starts a new pipeline from a point in time of a
// topic: batch A (before the time) must be left out, batch B (after) and
// batch C (produced while the backfill runs, partly after its stop offsets)
// must be in events exactly once and counted exactly once, the replay
// paused and resumed on the way, and the stream it hands over to must
// carry on from the replay's last offsets.
func TestBackfillKafkaHandover(t *testing.T) {
	cfg, db, _ := newStackConfig(t, false)
	cfg.NoPipeline = true
	s := startStack(t, cfg)
	defer stopStack(t, s)
	ctx := context.Background()
	const topic, pipeline = "replay-src", "replay"
	if err := kafka.EnsureTopic(ctx, kafkaConfig(s), topic, 4, 1); err != nil {
		t.Fatal(err)
	}
	gen := func(runID string, seed int64, n int, rate float64) loadgen.Config {
		lg := loadgen.DefaultConfig()
		lg.Count, lg.DuplicateRatio, lg.BadRatio, lg.Seed, lg.Spread, lg.RunID, lg.Rate, lg.BatchSize = n, 0.05, 0.01, seed, 10*time.Minute, runID, rate, 500
		return lg
	}
	a := produce(t, s, topic, gen("bfA", 81, 5000, 0))
	time.Sleep(100 * time.Millisecond)
	from := time.Now().UTC()
	time.Sleep(100 * time.Millisecond)
	b := produce(t, s, topic, gen("bfB", 82, 100000, 0))

	// C streams in from before the backfill starts until after its replay
	// snapshot: the hand-over boundary falls inside C.
	cDone := make(chan loadgen.Stats, 1)
	go func() { cDone <- produce(t, s, topic, gen("bfC", 83, 20000, 2000)) }()
	time.Sleep(time.Second)

	in := workflows.BackfillInput{Mode: "kafka", Pipeline: pipeline, Topic: topic, FromTime: from.Format(time.RFC3339Nano),
		BatchSize: 100, Writers: 1, FlushMillis: 50, ProgressSeconds: 1}
	const id = "backfill-kafka-test"
	started := time.Now()
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.DefaultTaskQueue}, workflows.BackfillName, in)
	if err != nil {
		t.Fatal(err)
	}
	committed := func() int64 {
		return queryInt(t, db, "SELECT COALESCE(SUM(next_offset),0) FROM kafka_offsets WHERE pipeline = ?", pipeline)
	}
	// Pause mid-replay, once the status shows live progress: commits
	// stop, the status says where it stands.
	var st workflows.BackfillStatus
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if st = backfillStatus(t, s, id); st.Phase == "replaying" && committed() > int64(a.Emitted)+1000 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Phase != "replaying" {
		t.Fatalf("replay not under way: %+v", st)
	}
	if err := s.Client.SignalWorkflow(ctx, id, "", workflows.SignalPause, nil); err != nil {
		t.Fatal(err)
	}
	last, lastChange := committed(), time.Now()
	for stop := time.Now().Add(30 * time.Second); time.Since(lastChange) < 2*time.Second && time.Now().Before(stop); {
		time.Sleep(100 * time.Millisecond)
		if n := committed(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	st = backfillStatus(t, s, id)
	if st.Phase != "paused" || !st.Paused || st.State == nil || st.State.Replay == nil {
		t.Fatalf("after pause: %+v", st)
	}
	if st.Remaining <= 0 || len(st.Partitions) != 4 || st.Partitions[0].UntilOffset == nil {
		t.Fatalf("paused status should show progress against the stop offsets: remaining %d, partitions %+v", st.Remaining, st.Partitions)
	}
	// The start offsets are those of from_time: all of A lies before, all
	// of B after; the stop offsets include all of B.
	var startSum, stopSum int64
	for _, p := range st.State.Replay.Partitions {
		startSum += p.Start
		stopSum += p.Stop
	}
	if startSum != int64(a.Emitted) || stopSum <= int64(a.Emitted+b.Emitted) {
		t.Fatalf("start offsets sum to %d, want A = %d; stop offsets to %d, want more than A+B = %d (some of C)", startSum, a.Emitted, stopSum, a.Emitted+b.Emitted)
	}
	if st.Remaining != stopSum-last {
		t.Errorf("paused status: remaining %d, want stop offsets %d - committed %d = %d", st.Remaining, stopSum, last, stopSum-last)
	}
	t.Logf("paused at %d of %d offsets (remaining %d in the status); replay plan %+v", last, stopSum, st.Remaining, st.State.Replay)
	time.Sleep(time.Second)
	if n := committed(); n != last {
		t.Fatalf("commits went on while paused: %d -> %d", last, n)
	}
	if err := s.Client.SignalWorkflow(ctx, id, "", workflows.SignalResume, nil); err != nil {
		t.Fatal(err)
	}

	var res workflows.BackfillStatus
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	replayTook := time.Since(started)
	if res.Phase != "done" || res.Handover == nil || res.Handover.WorkflowID != devstack.StreamWorkflowID(pipeline) || res.Handover.AlreadyRunning {
		t.Fatalf("result %+v", res)
	}
	if res.State.Messages != res.State.Replay.Messages {
		t.Errorf("the replay committed %d messages, want exactly the %d between its start and stop offsets", res.State.Messages, res.State.Replay.Messages)
	}
	t.Logf("replay done and handed over in %s: %d sessions, %d messages, %d inserted, %d duplicates, %d dead letters",
		replayTook.Round(time.Millisecond), res.State.Sessions, res.State.Messages, res.State.Inserted, res.State.Duplicates, res.State.DeadLetters)

	// The stream carries on from where the replay stopped.
	c := <-cDone
	var end, stored map[int32]int64
	deadline = time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if end, err = kafka.EndOffsets(ctx, kafkaConfig(s), topic); err != nil {
			t.Fatal(err)
		}
		if stored, err = store.LoadOffsets(ctx, db, pipeline, topic); err != nil {
			t.Fatal(err)
		}
		if store.CaughtUp(end, stored) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !store.CaughtUp(end, stored) {
		t.Fatalf("the handed-over stream did not catch up: end %v, kafka_offsets %v", end, stored)
	}
	t.Logf("caught up %s after the start", time.Since(started).Round(time.Millisecond))
	desc, err := s.Client.DescribeWorkflowExecution(ctx, devstack.StreamWorkflowID(pipeline), "")
	if err != nil || desc.WorkflowExecutionInfo.Status.String() != "Running" {
		t.Fatalf("handed-over stream: %v %v", desc, err)
	}

	prefix := func(p string) int64 {
		return queryInt(t, db, "SELECT COUNT(*) FROM events WHERE event_id LIKE ?", p+"-%")
	}
	if n := prefix("bfA"); n != 0 {
		t.Errorf("%d events of batch A (before from_time) were ingested", n)
	}
	if n := prefix("bfB"); n != int64(b.Valid) {
		t.Errorf("batch B: %d events, want %d", n, b.Valid)
	}
	if n := prefix("bfC"); n != int64(c.Valid) {
		t.Errorf("batch C: %d events, want %d", n, c.Valid)
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM events"); n != int64(b.Valid+c.Valid) {
		t.Errorf("events %d, want %d", n, b.Valid+c.Valid)
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM dead_letters WHERE pipeline = ?", pipeline); n != int64(b.Invalid+c.Invalid) {
		t.Errorf("dead letters %d, want %d (B and C's invalid ones)", n, b.Invalid+c.Invalid)
	}
	n := assertCountsExact(t, db)
	t.Logf("A %d / B %d / C %d messages; %d events exactly once, %d buckets exact", a.Emitted, b.Emitted, c.Emitted, b.Valid+c.Valid, n)

	// A second kafka backfill of the same pipeline is refused, naming the field.
	run2, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.DefaultTaskQueue}, workflows.BackfillName,
		workflows.BackfillInput{Mode: "kafka", Pipeline: pipeline, Topic: topic, FromTime: from.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if err := run2.Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "pipeline: kafka_offsets already holds offsets") {
		t.Fatalf("second backfill of the pipeline: %v, want a refusal naming pipeline", err)
	}
}
