package tests

import (
	"context"
	"testing"
	"time"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/devstack"
	"github.com/sluicedata/sluice/internal/loadgen"
	"github.com/sluicedata/sluice/workflows"
)

func streamStatus(t *testing.T, s *devstack.Stack) workflows.StreamStatus {
	t.Helper()
	v, err := s.Client.QueryWorkflow(context.Background(), devstack.StreamWorkflowID("default"), "", workflows.QueryStatus)
	if err != nil {
		t.Fatalf("status query: %v", err)
	}
	var st workflows.StreamStatus
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func signal(t *testing.T, s *devstack.Stack, name string) {
	t.Helper()
	if err := s.Client.SignalWorkflow(context.Background(), devstack.StreamWorkflowID("default"), "", name, nil); err != nil {
		t.Fatalf("signal %s: %v", name, err)
	}
}

// TestPauseResumeAndContinueAsNew streams events while the workflow is
// paused, resumed and driven through several continue-as-new cycles
// (one-second sessions, one session per run), then checks exact totals.
func TestPauseResumeAndContinueAsNew(t *testing.T) {
	cfg, db, _ := newStackConfig(t, false)
	cfg.NoPipeline = true
	s := startStack(t, cfg)
	defer stopStack(t, s)
	in := workflows.StreamIngestInput{
		ConsumeInput:      activities.ConsumeInput{Pipeline: "default", Topic: cfg.Topic, SessionSeconds: 1, ProgressSeconds: 1, FlushMillis: 50},
		MaxSessionsPerRun: 1,
	}
	startPipeline(t, s, in)

	produced := make(chan loadgen.Stats, 1)
	go func() {
		lg := loadgen.DefaultConfig()
		lg.Count, lg.DuplicateRatio, lg.BadRatio, lg.Seed, lg.BatchSize, lg.RunID, lg.Rate = 40000, 0.05, 0.01, 41, 200, "control", 4000
		produced <- produce(t, s, cfg.Topic, lg)
	}()
	committed := func() int64 { return queryInt(t, db, "SELECT COALESCE(SUM(next_offset),0) FROM kafka_offsets") }
	deadline := time.Now().Add(60 * time.Second)
	for committed() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}

	// Pause: commits stop, the status says so.
	sent := time.Now()
	signal(t, s, workflows.SignalPause)
	var stoppedAfter time.Duration
	last, lastChange := committed(), time.Now()
	for time.Since(sent) < 15*time.Second {
		time.Sleep(50 * time.Millisecond)
		if n := committed(); n != last {
			last, lastChange = n, time.Now()
		}
		if st := streamStatus(t, s); st.Phase == "paused" && time.Since(lastChange) > 3*time.Second {
			stoppedAfter = lastChange.Sub(sent)
			break
		}
	}
	if stoppedAfter == 0 && lastChange.After(sent) || streamStatus(t, s).Phase != "paused" {
		t.Fatalf("pause did not take effect: last commit %s after the signal, phase %s", lastChange.Sub(sent), streamStatus(t, s).Phase)
	}
	t.Logf("pause: last commit %s after the signal", max(stoppedAfter, 0).Round(time.Millisecond))
	held := committed()
	time.Sleep(2 * time.Second)
	if n := committed(); n != held {
		t.Fatalf("commits went on while paused: %d -> %d", held, n)
	}

	// Resume: commits start again.
	sent = time.Now()
	signal(t, s, workflows.SignalResume)
	for committed() == held && time.Since(sent) < 30*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	if committed() == held {
		t.Fatal("resume did not restart consumption within 30 s")
	}
	t.Logf("resume: first commit %s after the signal", time.Since(sent).Round(time.Millisecond))

	stats := <-produced
	waitCaughtUp(t, s, db, cfg.Topic, 120*time.Second)
	if got := queryInt(t, db, "SELECT COUNT(*) FROM events"); got != int64(stats.Valid) {
		t.Errorf("events rows = %d, want %d", got, stats.Valid)
	}
	if got := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute"); got != int64(stats.Valid) {
		t.Errorf("sum of counts = %d, want %d", got, stats.Valid)
	}
	if got := queryInt(t, db, "SELECT COUNT(*) FROM dead_letters"); got != int64(stats.Invalid) {
		t.Errorf("dead letters = %d, want %d", got, stats.Invalid)
	}
	st := streamStatus(t, s)
	if st.Runs < 3 {
		t.Errorf("workflow runs = %d, want several continue-as-new cycles", st.Runs)
	}
	if st.Paused || st.Phase == "paused" {
		t.Errorf("pause state after resume and continue-as-new = %v/%s", st.Paused, st.Phase)
	}
	if st.Messages == 0 {
		t.Errorf("totals were not carried across runs: %+v", st.StreamState)
	}
	t.Logf("after %d runs and %d sessions: status %+v", st.Runs, st.Sessions, st.StreamState)
}
