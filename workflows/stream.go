// Package workflows holds Sluice's deterministic workflow code: no I/O,
// clocks or goroutines outside the Temporal SDK's. Every side effect is an
// activity (package activities), referred to by its registered name.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicedata/sluice/activities"
)

// Registered names: a durable API, never rename one.
const (
	StreamIngestName = "StreamIngestWorkflow"
	SignalPause      = "pause"
	SignalResume     = "resume"
	QueryStatus      = "status"
	// DefaultTaskQueue is the task queue Sluice's workers poll by default.
	DefaultTaskQueue = "sluice"
)

// StreamIngestInput is the one JSON object StreamIngestWorkflow takes.
// Only pipeline and topic are required; see activities.ConsumeInput for the
// consumer settings.
type StreamIngestInput struct {
	activities.ConsumeInput
	// HeartbeatTimeoutSeconds is how long the consume activity may go
	// without heartbeating before Temporal retries it elsewhere (default 20).
	HeartbeatTimeoutSeconds int `json:"heartbeat_timeout_seconds,omitempty"`
	// MaxSessionsPerRun forces a continue-as-new after this many consume
	// sessions even if the server has not suggested one (default 100).
	MaxSessionsPerRun int `json:"max_sessions_per_run,omitempty"`
	// State is carried across continue-as-new; leave it out when starting.
	State *StreamState `json:"state,omitempty"`
}

// StreamState is everything the workflow remembers.
type StreamState struct {
	Paused      bool  `json:"paused"`
	Sessions    int   `json:"sessions"`
	Runs        int   `json:"runs"`
	Messages    int64 `json:"messages"`
	Inserted    int64 `json:"inserted"`
	Duplicates  int64 `json:"duplicates"`
	DeadLetters int64 `json:"dead_letters"`
	// Last is the progress reported by the last finished consume session.
	Last      *activities.ConsumeProgress `json:"last,omitempty"`
	LastError string                      `json:"last_error,omitempty"`
	StartedAt time.Time                   `json:"started_at"`
}

// StreamStatus answers the status query.
type StreamStatus struct {
	Pipeline string `json:"pipeline"`
	Topic    string `json:"topic"`
	// Phase is "consuming", "pausing", "paused" or "continuing".
	Phase string `json:"phase"`
	StreamState
	// Note says where live progress is: the consume activity's heartbeat
	// details carry offsets, lag and rates every second; Last above is only
	// refreshed when a session ends.
	Note string `json:"note"`
}

func (in StreamIngestInput) withDefaults() StreamIngestInput {
	in.ConsumeInput = in.ConsumeInput.WithDefaults()
	if in.SessionSeconds == 0 {
		in.SessionSeconds = 600
	}
	if in.HeartbeatTimeoutSeconds == 0 {
		in.HeartbeatTimeoutSeconds = 20
	}
	if in.MaxSessionsPerRun == 0 {
		in.MaxSessionsPerRun = 100
	}
	return in
}

func (in StreamIngestInput) validate() error {
	if err := in.ConsumeInput.Validate(); err != nil {
		return err
	}
	if in.HeartbeatTimeoutSeconds < 2 || in.HeartbeatTimeoutSeconds > 600 {
		return fmt.Errorf("heartbeat_timeout_seconds: must be 2-600, got %d", in.HeartbeatTimeoutSeconds)
	}
	if in.MaxSessionsPerRun < 1 {
		return fmt.Errorf("max_sessions_per_run: must be >= 1, got %d", in.MaxSessionsPerRun)
	}
	return nil
}

// StreamIngestWorkflow runs a pipeline continuously: it keeps one
// long-running Consume activity going (restarting it after each session),
// obeys the pause and resume signals, answers the status query, and
// continues as new before its history grows large.
func StreamIngestWorkflow(ctx workflow.Context, in StreamIngestInput) error {
	in = in.withDefaults()
	if err := in.validate(); err != nil {
		return temporal.NewNonRetryableApplicationError("invalid StreamIngestWorkflow input: "+err.Error(), "InvalidInput", err)
	}
	st := StreamState{StartedAt: workflow.Now(ctx)}
	if in.State != nil {
		st = *in.State
	}
	st.Runs++
	phase := "consuming"
	if st.Paused {
		phase = "paused"
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (StreamStatus, error) {
		return StreamStatus{Pipeline: in.Pipeline, Topic: in.Topic, Phase: phase, StreamState: st,
			Note: "live offsets, lag and rates: heartbeat details of the pending Consume activity"}, nil
	}); err != nil {
		return err
	}

	pauseCh := workflow.GetSignalChannel(ctx, SignalPause)
	resumeCh := workflow.GetSignalChannel(ctx, SignalResume)
	applySignals := func() {
		for {
			if pauseCh.ReceiveAsync(nil) {
				st.Paused = true
				continue
			}
			if resumeCh.ReceiveAsync(nil) {
				st.Paused = false
				continue
			}
			return
		}
	}

	ao := workflow.ActivityOptions{
		StartToCloseTimeout: time.Duration(in.SessionSeconds)*time.Second + 10*time.Minute,
		HeartbeatTimeout:    time.Duration(in.HeartbeatTimeoutSeconds) * time.Second,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: []string{"InvalidInput", "InvalidConfig"},
		},
	}
	consumeIn := in.ConsumeInput
	sessionsThisRun := 0

	for {
		applySignals()
		if st.Paused {
			phase = "paused"
			workflow.GetLogger(ctx).Info("pipeline paused", "pipeline", in.Pipeline)
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(resumeCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Paused = false })
			sel.AddReceive(pauseCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
			sel.Select(ctx)
			if st.Paused {
				continue
			}
		}

		phase = "consuming"
		actCtx, cancel := workflow.WithCancel(workflow.WithActivityOptions(ctx, ao))
		fut := workflow.ExecuteActivity(actCtx, activities.ConsumeName, consumeIn)
		done := false
		var prog activities.ConsumeProgress
		var actErr error
		for !done {
			sel := workflow.NewSelector(ctx)
			sel.AddFuture(fut, func(f workflow.Future) { actErr = f.Get(ctx, &prog); done = true })
			sel.AddReceive(pauseCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				if !st.Paused {
					st.Paused = true
					phase = "pausing"
					cancel()
				}
			})
			sel.AddReceive(resumeCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				st.Paused = false // a resume while pausing wins once the session has stopped
			})
			sel.Select(ctx)
		}
		cancel()
		sessionsThisRun++
		st.Sessions++
		if prog.Pipeline != "" {
			p := prog
			st.Last = &p
			st.Messages += prog.Messages
			st.Inserted += prog.Inserted
			st.Duplicates += prog.Duplicates
			st.DeadLetters += prog.DeadLetters
		}
		if actErr != nil {
			var canceled *temporal.CanceledError
			var appErr *temporal.ApplicationError
			switch {
			case errors.As(actErr, &canceled):
				// Paused.
			case errors.As(actErr, &appErr) && appErr.NonRetryable():
				st.LastError = actErr.Error()
				return actErr
			default:
				st.LastError = actErr.Error()
			}
		}

		if sessionsThisRun >= in.MaxSessionsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			phase = "continuing"
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			applySignals()
			next := in
			s := st
			next.State = &s
			return workflow.NewContinueAsNewError(ctx, StreamIngestName, next)
		}
	}
}
