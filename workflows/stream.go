// Package workflows holds Sluice's deterministic workflow code: no I/O,
// clocks or goroutines outside the Temporal SDK's. Every side effect is an
// activity (package activities), referred to by its registered name.
package workflows

import (
	"errors"
	"fmt"
	"sort"
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
	// SignalProgress carries a consume activity's progress (sent by the
	// activity itself every progress_seconds) so the status query is live.
	SignalProgress = activities.ProgressSignalName
	QueryStatus    = "status"
	// DefaultTaskQueue is the task queue Sluice's workers poll by default.
	DefaultTaskQueue = "sluice"
)

// StreamIngestInput is the one JSON object StreamIngestWorkflow takes.
// Only pipeline and topic are required; see activities.ConsumeInput for the
// consumer settings.
type StreamIngestInput struct {
	activities.ConsumeInput
	// Parallelism is the number of consume activities run at once (default
	// 1). They join one consumer group, so the topic's partitions are split
	// between them and the worker processes that run them.
	Parallelism int `json:"parallelism,omitempty"`
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
	Phase       string `json:"phase"`
	Parallelism int    `json:"parallelism"`
	StreamState
	// Live is the latest progress of each running consume activity (sent
	// every progress_seconds); the totals above count finished sessions.
	Live []activities.ConsumeProgress `json:"live"`
	// Partitions merges the live per-partition offsets and lag.
	Partitions   []activities.PartitionProgress `json:"partitions"`
	Lag          int64                          `json:"lag"`
	EventsPerSec float64                        `json:"events_per_sec"`
}

func (in StreamIngestInput) withDefaults() StreamIngestInput {
	in.ConsumeInput = in.ConsumeInput.WithDefaults()
	if in.SessionSeconds == 0 {
		in.SessionSeconds = 600
	}
	if in.ProgressSeconds == 0 {
		in.ProgressSeconds = 5
	}
	if in.Parallelism == 0 {
		in.Parallelism = 1
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
	if in.UntilOffsets != nil {
		return fmt.Errorf("until_offsets: a stream has no end (BackfillWorkflow replays bounded ranges)")
	}
	if in.Parallelism < 1 || in.Parallelism > 64 {
		return fmt.Errorf("parallelism: must be 1-64, got %d", in.Parallelism)
	}
	if in.HeartbeatTimeoutSeconds < 2 || in.HeartbeatTimeoutSeconds > 600 {
		return fmt.Errorf("heartbeat_timeout_seconds: must be 2-600, got %d", in.HeartbeatTimeoutSeconds)
	}
	if in.MaxSessionsPerRun < 1 {
		return fmt.Errorf("max_sessions_per_run: must be >= 1, got %d", in.MaxSessionsPerRun)
	}
	return nil
}

// consumeSlot is one of the Parallelism consume activities.
type consumeSlot struct {
	fut     workflow.Future
	cancel  workflow.CancelFunc
	running bool
	live    *activities.ConsumeProgress
}

// StreamIngestWorkflow runs a pipeline continuously: it keeps Parallelism
// long-running Consume activities going (restarting each after its
// session), obeys the pause and resume signals, answers the status query,
// and continues as new before its history grows large.
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
	slots := make([]*consumeSlot, in.Parallelism)
	for i := range slots {
		slots[i] = &consumeSlot{}
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (StreamStatus, error) {
		return statusOf(in, phase, st, slots), nil
	}); err != nil {
		return err
	}

	pauseCh := workflow.GetSignalChannel(ctx, SignalPause)
	resumeCh := workflow.GetSignalChannel(ctx, SignalResume)
	progressCh := workflow.GetSignalChannel(ctx, SignalProgress)
	onProgress := func(c workflow.ReceiveChannel, _ bool) {
		var p activities.ProgressSignal
		c.Receive(ctx, &p)
		if p.Slot >= 0 && p.Slot < len(slots) && slots[p.Slot].running {
			pp := p.Progress
			slots[p.Slot].live = &pp
		}
	}
	applySignals := func() { drainControl(pauseCh, resumeCh, progressCh, &st.Paused, onProgress) }

	ao := workflow.ActivityOptions{
		StartToCloseTimeout: time.Duration(in.SessionSeconds)*time.Second + 10*time.Minute,
		HeartbeatTimeout:    time.Duration(in.HeartbeatTimeoutSeconds) * time.Second,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			// Short: a consumer retried after its worker died should resume fast.
			MaximumInterval:        5 * time.Second,
			NonRetryableErrorTypes: []string{"InvalidInput", "InvalidConfig"},
		},
	}
	var fatal error
	finish := func(i int, f workflow.Future) {
		var prog activities.ConsumeProgress
		err := f.Get(ctx, &prog)
		s := slots[i]
		s.running, s.fut, s.live = false, nil, nil
		s.cancel()
		st.Sessions++
		if prog.Pipeline != "" {
			p := prog
			st.Last = &p
			st.Messages += prog.Messages
			st.Inserted += prog.Inserted
			st.Duplicates += prog.Duplicates
			st.DeadLetters += prog.DeadLetters
		}
		if err != nil {
			var canceled *temporal.CanceledError
			var appErr *temporal.ApplicationError
			switch {
			case errors.As(err, &canceled):
			case errors.As(err, &appErr) && appErr.NonRetryable():
				st.LastError = err.Error()
				fatal = err
			default:
				st.LastError = err.Error()
			}
		}
	}
	startSlot := func(i int) {
		actCtx, cancel := workflow.WithCancel(workflow.WithActivityOptions(ctx, ao))
		cin := in.ConsumeInput
		cin.Slot = i
		slots[i].fut = workflow.ExecuteActivity(actCtx, activities.ConsumeName, cin)
		slots[i].cancel = cancel
		slots[i].running = true
	}
	anyRunning := func() bool {
		for _, s := range slots {
			if s.running {
				return true
			}
		}
		return false
	}
	// stopAll cancels every running session and waits until they ended.
	stopAll := func() {
		for _, s := range slots {
			if s.running {
				s.cancel()
			}
		}
		for anyRunning() {
			sel := workflow.NewSelector(ctx)
			for i, s := range slots {
				if s.running {
					sel.AddFuture(s.fut, func(f workflow.Future) { finish(i, f) })
				}
			}
			sel.AddReceive(progressCh, onProgress)
			sel.Select(ctx)
		}
	}
	sessionsThisRun := 0

	for {
		applySignals()
		if fatal != nil {
			stopAll()
			return fatal
		}
		if st.Paused {
			if anyRunning() {
				phase = "pausing"
				stopAll()
			}
			phase = "paused"
			workflow.GetLogger(ctx).Info("pipeline paused", "pipeline", in.Pipeline)
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(resumeCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Paused = false })
			sel.AddReceive(pauseCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
			sel.AddReceive(progressCh, onProgress)
			sel.Select(ctx)
			continue
		}
		if sessionsThisRun >= in.MaxSessionsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			phase = "continuing"
			stopAll()
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			applySignals()
			next := in
			s := st
			next.State = &s
			return workflow.NewContinueAsNewError(ctx, StreamIngestName, next)
		}

		phase = "consuming"
		for i, s := range slots {
			if !s.running {
				startSlot(i)
			}
		}
		sel := workflow.NewSelector(ctx)
		for i, s := range slots {
			sel.AddFuture(s.fut, func(f workflow.Future) { finish(i, f); sessionsThisRun++ })
		}
		sel.AddReceive(pauseCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Paused = true })
		sel.AddReceive(resumeCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Paused = false })
		sel.AddReceive(progressCh, onProgress)
		sel.Select(ctx)
	}
}

// statusOf builds the status query's answer.
func statusOf(in StreamIngestInput, phase string, st StreamState, slots []*consumeSlot) StreamStatus {
	out := StreamStatus{Pipeline: in.Pipeline, Topic: in.Topic, Phase: phase, Parallelism: in.Parallelism, StreamState: st}
	for _, s := range slots {
		if s.live == nil {
			continue
		}
		out.Live = append(out.Live, *s.live)
		out.Lag += s.live.Lag
		out.EventsPerSec += s.live.EventsPerSec
		out.Partitions = append(out.Partitions, s.live.Partitions...)
	}
	sort.Slice(out.Partitions, func(i, j int) bool { return out.Partitions[i].Partition < out.Partitions[j].Partition })
	return out
}

// drainControl applies, without blocking, every pause, resume and progress
// signal already received (StreamIngestWorkflow and BackfillWorkflow).
func drainControl(pauseCh, resumeCh, progressCh workflow.ReceiveChannel, paused *bool, onProgress func(workflow.ReceiveChannel, bool)) {
	for {
		switch {
		case pauseCh.ReceiveAsync(nil):
			*paused = true
		case resumeCh.ReceiveAsync(nil):
			*paused = false
		case progressCh.Len() > 0:
			onProgress(progressCh, true)
		default:
			return
		}
	}
}
