package workflows

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicedata/sluice/activities"
)

func baseInput() StreamIngestInput {
	return StreamIngestInput{ConsumeInput: activities.ConsumeInput{Pipeline: "default", Topic: "events"}}
}

func TestStreamIngestRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*StreamIngestInput)
		want string
	}{
		{"no pipeline", func(in *StreamIngestInput) { in.Pipeline = "" }, "pipeline:"},
		{"bad topic", func(in *StreamIngestInput) { in.Topic = "a topic" }, "topic:"},
		{"huge batch", func(in *StreamIngestInput) { in.BatchSize = 60000 }, "batch_size:"},
		{"start_from", func(in *StreamIngestInput) { in.StartFrom = "middle" }, "start_from:"},
		{"heartbeat", func(in *StreamIngestInput) { in.HeartbeatTimeoutSeconds = 1 }, "heartbeat_timeout_seconds:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.RegisterWorkflowWithOptions(StreamIngestWorkflow, workflow.RegisterOptions{Name: StreamIngestName})
			in := baseInput()
			tc.mut(&in)
			env.ExecuteWorkflow(StreamIngestName, in)
			err := env.GetWorkflowError()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// blockingConsume stands in for the Consume activity: it heartbeats until
// cancelled, like the real one.
func blockingConsume(calls *atomic.Int32) func(ctx context.Context, in activities.ConsumeInput) (activities.ConsumeProgress, error) {
	return func(ctx context.Context, in activities.ConsumeInput) (activities.ConsumeProgress, error) {
		calls.Add(1)
		for {
			select {
			case <-ctx.Done():
				return activities.ConsumeProgress{Pipeline: in.Pipeline, Messages: 7}, ctx.Err()
			case <-time.After(10 * time.Millisecond):
				activity.RecordHeartbeat(ctx, "ok")
			}
		}
	}
}

func TestStreamIngestPauseResumeAndStatus(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(StreamIngestWorkflow, workflow.RegisterOptions{Name: StreamIngestName})
	var calls atomic.Int32
	env.RegisterActivityWithOptions(blockingConsume(&calls), activity.RegisterOptions{Name: activities.ConsumeName})

	status := func() StreamStatus {
		t.Helper()
		v, err := env.QueryWorkflow(QueryStatus)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		var st StreamStatus
		if err := v.Get(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	var seen []string
	env.RegisterDelayedCallback(func() {
		seen = append(seen, status().Phase)
		env.SignalWorkflow(SignalPause, nil)
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		st := status()
		seen = append(seen, st.Phase)
		if !st.Paused || calls.Load() != 1 {
			t.Errorf("after pause: paused=%v calls=%d", st.Paused, calls.Load())
		}
		env.SignalWorkflow(SignalResume, nil)
	}, 2*time.Second)
	env.RegisterDelayedCallback(func() {
		seen = append(seen, status().Phase)
		if calls.Load() != 2 {
			t.Errorf("after resume: consume started %d times, want 2", calls.Load())
		}
		env.CancelWorkflow()
	}, 3*time.Second)
	env.ExecuteWorkflow(StreamIngestName, baseInput())
	if want := "consuming,paused,consuming"; strings.Join(seen, ",") != want {
		t.Fatalf("phases = %v, want %s", seen, want)
	}
}

func TestStreamIngestContinuesAsNewCarryingState(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(StreamIngestWorkflow, workflow.RegisterOptions{Name: StreamIngestName})
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.ConsumeInput) (activities.ConsumeProgress, error) {
		return activities.ConsumeProgress{Pipeline: in.Pipeline, Messages: 10, Inserted: 9, Duplicates: 1}, nil
	}, activity.RegisterOptions{Name: activities.ConsumeName})
	in := baseInput()
	in.MaxSessionsPerRun = 3
	in.State = &StreamState{Messages: 100, Runs: 4}
	env.ExecuteWorkflow(StreamIngestName, in)
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("error = %v, want continue-as-new", err)
	}
	var next StreamIngestInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.State == nil || next.State.Messages != 130 || next.State.Inserted != 27 || next.State.Runs != 5 || next.State.Sessions != 3 {
		t.Fatalf("carried state = %+v", next.State)
	}
	if next.Pipeline != "default" || next.Topic != "events" {
		t.Fatalf("carried input = %+v", next)
	}
}

func TestStreamIngestKeepsPauseAcrossContinueAsNew(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(StreamIngestWorkflow, workflow.RegisterOptions{Name: StreamIngestName})
	var calls atomic.Int32
	env.RegisterActivityWithOptions(blockingConsume(&calls), activity.RegisterOptions{Name: activities.ConsumeName})
	in := baseInput()
	in.State = &StreamState{Paused: true}
	env.RegisterDelayedCallback(func() {
		if calls.Load() != 0 {
			t.Errorf("a paused pipeline started consuming")
		}
		env.CancelWorkflow()
	}, time.Minute)
	env.ExecuteWorkflow(StreamIngestName, in)
}

func TestStreamIngestParallelSlotsAndLiveStatus(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(StreamIngestWorkflow, workflow.RegisterOptions{Name: StreamIngestName})
	var calls atomic.Int32
	env.RegisterActivityWithOptions(blockingConsume(&calls), activity.RegisterOptions{Name: activities.ConsumeName})
	in := baseInput()
	in.Parallelism = 3
	query := func() StreamStatus {
		v, err := env.QueryWorkflow(QueryStatus)
		if err != nil {
			t.Fatal(err)
		}
		var st StreamStatus
		if err := v.Get(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	env.RegisterDelayedCallback(func() {
		if calls.Load() != 3 {
			t.Errorf("consume activities started = %d, want 3", calls.Load())
		}
		env.SignalWorkflow(SignalProgress, activities.ProgressSignal{Slot: 1, Progress: activities.ConsumeProgress{
			Lag: 40, EventsPerSec: 1000, Partitions: []activities.PartitionProgress{{Partition: 2, NextOffset: 10, HighWater: 50, Lag: 40}}}})
		env.SignalWorkflow(SignalProgress, activities.ProgressSignal{Slot: 2, Progress: activities.ConsumeProgress{
			Lag: 2, EventsPerSec: 500, Partitions: []activities.PartitionProgress{{Partition: 0, NextOffset: 8, HighWater: 10, Lag: 2}}}})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		st := query()
		if st.Parallelism != 3 || st.Lag != 42 || st.EventsPerSec != 1500 || len(st.Partitions) != 2 || st.Partitions[0].Partition != 0 {
			t.Errorf("live status = %+v", st)
		}
		env.SignalWorkflow(SignalPause, nil)
	}, 2*time.Second)
	env.RegisterDelayedCallback(func() {
		st := query()
		if st.Phase != "paused" || len(st.Live) != 0 || st.Sessions != 3 {
			t.Errorf("after pause: phase %s, live %d, sessions %d; want paused, 0, 3", st.Phase, len(st.Live), st.Sessions)
		}
		env.SignalWorkflow(SignalResume, nil)
	}, 3*time.Second)
	env.RegisterDelayedCallback(func() {
		if calls.Load() != 6 {
			t.Errorf("after resume: %d activities started, want 6", calls.Load())
		}
		env.CancelWorkflow()
	}, 4*time.Second)
	env.ExecuteWorkflow(StreamIngestName, in)
}
