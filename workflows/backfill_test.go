package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/store"
)

func TestBackfillRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		in   BackfillInput
		want string
	}{
		{BackfillInput{}, "mode: required"},
		{BackfillInput{Mode: "replay"}, "mode: must be"},
		{BackfillInput{Mode: "rebuild", ToDay: "2026-11-02"}, "from_day:"},
		{BackfillInput{Mode: "rebuild", FromDay: "2026-11-02", ToDay: "11/03/2026"}, "to_day:"},
		{BackfillInput{Mode: "rebuild", FromDay: "2026-11-02", ToDay: "2026-11-01"}, "to_day: 2026-11-01 is before"},
		{BackfillInput{Mode: "rebuild", FromDay: "2024-01-01", ToDay: "2026-11-01"}, "to_day: at most"},
		{BackfillInput{Mode: "rebuild", FromDay: "2026-11-01", ToDay: "2026-11-01", Concurrency: 9}, "concurrency:"},
		{BackfillInput{Mode: "rebuild", FromDay: "2026-11-01", ToDay: "2026-11-01", Topic: "events"}, "topic: not used"},
		{BackfillInput{Mode: "kafka", Topic: "events", FromTime: "2026-01-01T00:00:00Z"}, "pipeline:"},
		{BackfillInput{Mode: "kafka", Pipeline: "p", FromTime: "2026-01-01T00:00:00Z"}, "topic:"},
		{BackfillInput{Mode: "kafka", Pipeline: "p", Topic: "t"}, "from_time: required"},
		{BackfillInput{Mode: "kafka", Pipeline: "p", Topic: "t", FromTime: "yesterday"}, "from_time: want"},
		{BackfillInput{Mode: "kafka", Pipeline: "p", Topic: "t", FromTime: "2999-01-01T00:00:00Z"}, "from_time: 2999-01-01T00:00:00Z is in the future"},
		{BackfillInput{Mode: "kafka", Pipeline: "p", Topic: "t", FromTime: "2026-01-01T00:00:00Z", Handover: "later"}, "handover:"},
		{BackfillInput{Mode: "kafka", Pipeline: "p", Topic: "t", FromTime: "2026-01-01T00:00:00Z", BatchSize: 90000}, "batch_size:"},
		{BackfillInput{Mode: "kafka", Pipeline: "p", Topic: "t", FromTime: "2026-01-01T00:00:00Z", FromDay: "2026-01-01"}, "from_day: not used"},
	} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillName})
		env.ExecuteWorkflow(BackfillName, tc.in)
		err := env.GetWorkflowError()
		var appErr *temporal.ApplicationError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &appErr) || !appErr.NonRetryable() {
			t.Errorf("%+v: error = %v, want a non-retryable one naming %q", tc.in, err, tc.want)
		}
	}
}

func queryBackfill(t *testing.T, env *testsuite.TestWorkflowEnvironment) BackfillStatus {
	t.Helper()
	v, err := env.QueryWorkflow(QueryStatus)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	var st BackfillStatus
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestBackfillRebuildPausesBetweenDays: a pause sent while a day is being
// rebuilt lets that day finish and starts no other until resumed.
func TestBackfillRebuildPausesBetweenDays(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillName})
	release := make(chan struct{})
	var mu sync.Mutex
	var started []string
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.RebuildDayInput) (store.RebuildResult, error) {
		mu.Lock()
		started = append(started, in.Day)
		first := len(started) == 1
		mu.Unlock()
		if first {
			select {
			case <-release:
			case <-ctx.Done():
				return store.RebuildResult{}, ctx.Err()
			}
		}
		return store.RebuildResult{Day: in.Day, RowsScanned: 100, Drifted: 1, BucketsWritten: 1}, nil
	}, activity.RegisterOptions{Name: activities.BackfillRebuildDayName})
	startedN := func() int { mu.Lock(); defer mu.Unlock(); return len(started) }

	env.RegisterDelayedCallback(func() {
		st := queryBackfill(t, env)
		if st.Phase != "rebuilding" || len(st.Running) != 1 || st.Running[0] != "2026-10-30" || st.DaysTotal != 3 {
			t.Errorf("while rebuilding the first day: %+v", st)
		}
		env.SignalWorkflow(SignalPause, nil)
		close(release)
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		st := queryBackfill(t, env)
		if st.Phase != "paused" || st.DaysDone != 1 || startedN() != 1 {
			t.Errorf("after pause: phase %s, %d days done, %d started; want paused, 1, 1", st.Phase, st.DaysDone, startedN())
		}
		env.SignalWorkflow(SignalResume, nil)
	}, time.Hour)
	env.ExecuteWorkflow(BackfillName, BackfillInput{Mode: "rebuild", FromDay: "2026-10-30", ToDay: "2026-11-01"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackfillStatus
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Phase != "done" || res.DaysDone != 3 || len(res.Days) != 3 || res.Days[2].Day != "2026-11-01" || res.RowsScanned != 300 || res.Drifted != 3 {
		t.Fatalf("result %+v", res)
	}
	if strings.Join(started, ",") != "2026-10-30,2026-10-31,2026-11-01" {
		t.Fatalf("days started in order %v", started)
	}
}

func TestBackfillRebuildConcurrency(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillName})
	var now, peak atomic.Int32
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.RebuildDayInput) (store.RebuildResult, error) {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		now.Add(-1)
		return store.RebuildResult{Day: in.Day}, nil
	}, activity.RegisterOptions{Name: activities.BackfillRebuildDayName})
	env.ExecuteWorkflow(BackfillName, BackfillInput{Mode: "rebuild", FromDay: "2026-10-01", ToDay: "2026-10-10", Concurrency: 3})
	var res BackfillStatus
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.DaysDone != 10 || peak.Load() > 3 {
		t.Fatalf("%d days done, peak concurrency %d; want 10 and at most 3", res.DaysDone, peak.Load())
	}
}

// TestBackfillKafkaPauseResumeHandover: the replay is planned once, its
// consume session is cancelled by pause and started again by resume with
// the same stop offsets, and the stream is started as an abandoned child.
func TestBackfillKafkaPauseResumeHandover(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillName})
	var prepares atomic.Int32
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.PrepareReplayInput) (activities.PrepareReplayResult, error) {
		prepares.Add(1)
		return activities.PrepareReplayResult{Messages: 10, Partitions: []activities.ReplayRange{{Partition: 0, Start: 0, Stop: 10}, {Partition: 1, Start: 5, Stop: 5}}}, nil
	}, activity.RegisterOptions{Name: activities.BackfillPrepareReplayName})
	var calls atomic.Int32
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.ConsumeInput) (activities.ConsumeProgress, error) {
		n := calls.Add(1)
		if len(in.UntilOffsets) != 2 || in.UntilOffsets[0] != 10 || in.UntilOffsets[1] != 5 || in.Pipeline != "newpipe" {
			t.Errorf("consume input %+v", in)
		}
		if n == 1 {
			for {
				select {
				case <-ctx.Done():
					return activities.ConsumeProgress{}, ctx.Err()
				case <-time.After(10 * time.Millisecond):
					activity.RecordHeartbeat(ctx, "ok")
				}
			}
		}
		return activities.ConsumeProgress{Pipeline: in.Pipeline, Messages: 10, Inserted: 10, UntilReached: true}, nil
	}, activity.RegisterOptions{Name: activities.ConsumeName})
	var streamIn atomic.Value
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in StreamIngestInput) error {
		streamIn.Store(in)
		return nil
	}, workflow.RegisterOptions{Name: StreamIngestName})

	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalProgress, activities.ProgressSignal{Progress: activities.ConsumeProgress{Pipeline: "newpipe", Remaining: 4,
			Partitions: []activities.PartitionProgress{{Partition: 0, NextOffset: 6}}}})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		st := queryBackfill(t, env)
		if st.Phase != "replaying" || st.Remaining != 4 || len(st.Partitions) != 1 {
			t.Errorf("while replaying: %+v", st)
		}
		env.SignalWorkflow(SignalPause, nil)
	}, 2*time.Second)
	env.RegisterDelayedCallback(func() {
		st := queryBackfill(t, env)
		if st.Phase != "paused" || calls.Load() != 1 {
			t.Errorf("after pause: phase %s, %d sessions started", st.Phase, calls.Load())
		}
		env.SignalWorkflow(SignalResume, nil)
	}, 3*time.Second)
	env.SetTestTimeout(30 * time.Second) // a running activity makes the test clock real time
	env.ExecuteWorkflow(BackfillName, BackfillInput{Mode: "kafka", Pipeline: "newpipe", Topic: "clicks", FromTime: "2026-01-01T00:00:00Z", BatchSize: 500})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackfillStatus
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Phase != "done" || res.Handover == nil || res.Handover.WorkflowID != "stream-newpipe" || res.Remaining != 0 ||
		res.State.Sessions != 2 || res.State.Inserted != 10 || prepares.Load() != 1 || calls.Load() != 2 {
		t.Fatalf("result %+v state %+v", res, res.State)
	}
	sin, _ := streamIn.Load().(StreamIngestInput)
	if sin.Pipeline != "newpipe" || sin.Topic != "clicks" || sin.BatchSize != 500 || sin.UntilOffsets != nil {
		t.Fatalf("stream input %+v", sin)
	}
}

func TestBackfillKafkaRefusesAnExistingPipeline(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillName})
	var calls atomic.Int32
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.PrepareReplayInput) (activities.PrepareReplayResult, error) {
		calls.Add(1)
		err := errors.New("pipeline: kafka_offsets already holds offsets")
		return activities.PrepareReplayResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeOffsetsExist, err)
	}, activity.RegisterOptions{Name: activities.BackfillPrepareReplayName})
	env.ExecuteWorkflow(BackfillName, BackfillInput{Mode: "kafka", Pipeline: "default", Topic: "events", FromTime: "2026-01-01T00:00:00Z"})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "pipeline: kafka_offsets already") || calls.Load() != 1 {
		t.Fatalf("error %v after %d attempts, want the refusal naming pipeline, once", err, calls.Load())
	}
}
