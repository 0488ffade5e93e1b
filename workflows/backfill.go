package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/store"
)

// BackfillName is the registered name of BackfillWorkflow.
const BackfillName = "BackfillWorkflow"

// Backfill modes.
const (
	BackfillRebuild = "rebuild"
	BackfillKafka   = "kafka"
)

// maxRebuildDays bounds one rebuild run (and so its history).
const maxRebuildDays = 400

// BackfillInput is BackfillWorkflow's one JSON object.
//
// Mode "rebuild" rebuilds item_counts_minute of the UTC days [from_day,
// to_day] from events, one activity per day, concurrency days at once.
//
// Mode "kafka" starts a new pipeline at from_time: it stores the offsets of
// from_time as the pipeline's positions in kafka_offsets, replays the topic
// from there up to the end offsets seen at that moment, then hands over to
// StreamIngestWorkflow "stream-<pipeline>", which resumes exactly where the
// replay stopped.
type BackfillInput struct {
	Mode string `json:"mode"`

	// FromDay and ToDay (rebuild) bound the UTC days, inclusive, YYYY-MM-DD.
	FromDay string `json:"from_day,omitempty"`
	ToDay   string `json:"to_day,omitempty"`
	// Concurrency (rebuild) is the number of days rebuilt at once (1-8,
	// default 1).
	Concurrency int `json:"concurrency,omitempty"`

	// Pipeline, Topic and FromTime (kafka, RFC 3339) say what to replay.
	Pipeline string `json:"pipeline,omitempty"`
	Topic    string `json:"topic,omitempty"`
	FromTime string `json:"from_time,omitempty"`
	// Force (kafka) replaces offsets the pipeline already has for the
	// topic; without it that is refused (a kafka backfill starts a new
	// pipeline). Stop that pipeline's stream first.
	Force bool `json:"force,omitempty"`
	// Handover (kafka) is "stream" (default: start StreamIngestWorkflow
	// stream-<pipeline> after the replay, or leave the running one) or
	// "none".
	Handover string `json:"handover,omitempty"`
	// Consumer settings (kafka) of the replay, also given to the stream
	// it hands over to; defaults as in StreamIngestWorkflow.
	BatchSize   int `json:"batch_size,omitempty"`
	FlushMillis int `json:"flush_ms,omitempty"`
	Writers     int `json:"writers,omitempty"`
	// SessionSeconds (kafka): each replay session ends after this long and
	// the next resumes from kafka_offsets (default 600).
	SessionSeconds int `json:"session_seconds,omitempty"`
	// ProgressSeconds (kafka): how often the replay refreshes the status
	// query (default 2).
	ProgressSeconds int `json:"progress_seconds,omitempty"`
	// HeartbeatTimeoutSeconds (kafka) as in StreamIngestWorkflow (default 20).
	HeartbeatTimeoutSeconds int `json:"heartbeat_timeout_seconds,omitempty"`

	// State is carried across continue-as-new; leave it out when starting.
	State *BackfillState `json:"state,omitempty"`
}

// BackfillState is what a kafka backfill carries across continue-as-new.
type BackfillState struct {
	Paused      bool                            `json:"paused"`
	Replay      *activities.PrepareReplayResult `json:"replay,omitempty"`
	Sessions    int                             `json:"sessions"`
	Runs        int                             `json:"runs"`
	Messages    int64                           `json:"messages"`
	Inserted    int64                           `json:"inserted"`
	Duplicates  int64                           `json:"duplicates"`
	DeadLetters int64                           `json:"dead_letters"`
	// Last is the progress of the last finished replay session.
	Last      *activities.ConsumeProgress `json:"last,omitempty"`
	LastError string                      `json:"last_error,omitempty"`
}

// BackfillHandover says which stream took over.
type BackfillHandover struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id,omitempty"`
	// AlreadyRunning: the stream was running already and goes on.
	AlreadyRunning bool `json:"already_running,omitempty"`
}

// BackfillStatus answers the status query and is the workflow's result.
type BackfillStatus struct {
	Mode string `json:"mode"`
	// Phase: rebuild "rebuilding", "pausing", "paused", "done"; kafka
	// "preparing", "replaying", "pausing", "paused", "handing_over", "done".
	Phase  string `json:"phase"`
	Paused bool   `json:"paused"`

	// rebuild
	FromDay   string `json:"from_day,omitempty"`
	ToDay     string `json:"to_day,omitempty"`
	DaysTotal int    `json:"days_total,omitempty"`
	DaysDone  int    `json:"days_done"`
	// Running lists the days being rebuilt now.
	Running        []string `json:"running,omitempty"`
	RowsScanned    int64    `json:"rows_scanned,omitempty"`
	Drifted        int64    `json:"drifted,omitempty"`
	BucketsWritten int64    `json:"buckets_written,omitempty"`
	// Days are the finished days' results, in day order.
	Days []store.RebuildResult `json:"days,omitempty"`

	// kafka
	Pipeline string         `json:"pipeline,omitempty"`
	Topic    string         `json:"topic,omitempty"`
	FromTime string         `json:"from_time,omitempty"`
	State    *BackfillState `json:"state,omitempty"`
	// Partitions are the live committed offsets next to each partition's
	// until_offset (where the replay stops).
	Partitions []activities.PartitionProgress `json:"partitions,omitempty"`
	// Remaining is the messages left to replay (from live progress when
	// there is some, else from the plan).
	Remaining int64             `json:"remaining"`
	Handover  *BackfillHandover `json:"handover,omitempty"`
}

func (in BackfillInput) withDefaults() BackfillInput {
	switch in.Mode {
	case BackfillRebuild:
		if in.Concurrency == 0 {
			in.Concurrency = 1
		}
	case BackfillKafka:
		if in.Handover == "" {
			in.Handover = "stream"
		}
		if in.SessionSeconds == 0 {
			in.SessionSeconds = 600
		}
		if in.ProgressSeconds == 0 {
			in.ProgressSeconds = 2
		}
		if in.HeartbeatTimeoutSeconds == 0 {
			in.HeartbeatTimeoutSeconds = 20
		}
	}
	return in
}

// consumeInput is the replay's Consume input, without its stop condition.
func (in BackfillInput) consumeInput() activities.ConsumeInput {
	return activities.ConsumeInput{Pipeline: in.Pipeline, Topic: in.Topic, BatchSize: in.BatchSize, FlushMillis: in.FlushMillis,
		Writers: in.Writers, SessionSeconds: in.SessionSeconds, ProgressSeconds: in.ProgressSeconds}.WithDefaults()
}

// parseDay reads a YYYY-MM-DD day.
func parseDay(field, v string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return d, fmt.Errorf("%s: want a UTC day as YYYY-MM-DD, got %q", field, v)
	}
	return d, nil
}

// validate names the first wrong field.
func (in BackfillInput) validate(now time.Time) error {
	notFor := func(field, mode string) error {
		return fmt.Errorf("%s: not used by mode %q", field, mode)
	}
	switch in.Mode {
	case BackfillRebuild:
		switch {
		case in.Pipeline != "":
			return notFor("pipeline", in.Mode)
		case in.Topic != "":
			return notFor("topic", in.Mode)
		case in.FromTime != "":
			return notFor("from_time", in.Mode)
		}
		from, err := parseDay("from_day", in.FromDay)
		if err != nil {
			return err
		}
		to, err := parseDay("to_day", in.ToDay)
		if err != nil {
			return err
		}
		switch {
		case to.Before(from):
			return fmt.Errorf("to_day: %s is before from_day %s", in.ToDay, in.FromDay)
		case to.Sub(from) >= maxRebuildDays*24*time.Hour:
			return fmt.Errorf("to_day: at most %d days per run", maxRebuildDays)
		case in.Concurrency < 1 || in.Concurrency > 8:
			return fmt.Errorf("concurrency: must be 1-8, got %d", in.Concurrency)
		}
		return nil
	case BackfillKafka:
		switch {
		case in.FromDay != "":
			return notFor("from_day", in.Mode)
		case in.ToDay != "":
			return notFor("to_day", in.Mode)
		case in.Concurrency != 0:
			return notFor("concurrency", in.Mode)
		}
		if err := in.consumeInput().Validate(); err != nil {
			return err // names pipeline, topic, batch_size, ...
		}
		from, err := time.Parse(time.RFC3339, in.FromTime)
		switch {
		case in.FromTime == "":
			return fmt.Errorf("from_time: required (RFC 3339, e.g. 2026-11-21T00:00:00Z)")
		case err != nil:
			return fmt.Errorf("from_time: want an RFC 3339 time, got %q", in.FromTime)
		case from.After(now):
			return fmt.Errorf("from_time: %s is in the future", in.FromTime)
		case in.Handover != "stream" && in.Handover != "none":
			return fmt.Errorf("handover: must be \"stream\" or \"none\", got %q", in.Handover)
		case in.HeartbeatTimeoutSeconds < 2 || in.HeartbeatTimeoutSeconds > 600:
			return fmt.Errorf("heartbeat_timeout_seconds: must be 2-600, got %d", in.HeartbeatTimeoutSeconds)
		}
		return nil
	case "":
		return fmt.Errorf("mode: required, %q or %q", BackfillRebuild, BackfillKafka)
	default:
		return fmt.Errorf("mode: must be %q or %q, got %q", BackfillRebuild, BackfillKafka, in.Mode)
	}
}

// BackfillWorkflow replays history through the aggregation: mode "rebuild"
// from the events table, mode "kafka" from a Kafka topic for a new
// pipeline, handing over to the stream afterwards. Signals pause and resume
// (pause takes effect between days, or cancels the replay's consume
// session, which commits what it has); query status.
func BackfillWorkflow(ctx workflow.Context, in BackfillInput) (BackfillStatus, error) {
	in = in.withDefaults()
	if err := in.validate(workflow.Now(ctx)); err != nil {
		return BackfillStatus{Mode: in.Mode}, temporal.NewNonRetryableApplicationError("invalid BackfillWorkflow input: "+err.Error(), "InvalidInput", err)
	}
	if in.Mode == BackfillRebuild {
		return backfillRebuild(ctx, in)
	}
	return backfillKafka(ctx, in)
}

func backfillRebuild(ctx workflow.Context, in BackfillInput) (BackfillStatus, error) {
	from, _ := parseDay("from_day", in.FromDay)
	to, _ := parseDay("to_day", in.ToDay)
	var days []string
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format(time.DateOnly))
	}
	st := BackfillStatus{Mode: in.Mode, Phase: "rebuilding", FromDay: in.FromDay, ToDay: in.ToDay, DaysTotal: len(days)}
	results := make([]*store.RebuildResult, len(days))
	type run struct {
		i   int
		fut workflow.Future
	}
	var running []run
	status := func() BackfillStatus {
		out := st
		out.Running = nil
		for _, r := range running {
			out.Running = append(out.Running, days[r.i])
		}
		out.Days = nil
		for _, r := range results {
			if r != nil {
				out.Days = append(out.Days, *r)
			}
		}
		return out
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (BackfillStatus, error) { return status(), nil }); err != nil {
		return st, err
	}
	pauseCh := workflow.GetSignalChannel(ctx, SignalPause)
	resumeCh := workflow.GetSignalChannel(ctx, SignalResume)
	onPause := func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Paused = true }
	onResume := func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Paused = false }

	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 6 * time.Hour,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 10, NonRetryableErrorTypes: []string{"InvalidInput"}},
	})
	var fatal error
	next := 0
	for {
		for {
			if pauseCh.ReceiveAsync(nil) {
				st.Paused = true
			} else if resumeCh.ReceiveAsync(nil) {
				st.Paused = false
			} else {
				break
			}
		}
		if fatal != nil {
			st.Phase = "failed"
			return status(), fatal
		}
		// Pause takes effect between days: running days finish.
		for !st.Paused && next < len(days) && len(running) < in.Concurrency {
			running = append(running, run{i: next, fut: workflow.ExecuteActivity(actx, activities.BackfillRebuildDayName, activities.RebuildDayInput{Day: days[next]})})
			next++
		}
		if len(running) == 0 {
			if next >= len(days) {
				break
			}
			st.Phase = "paused"
			workflow.GetLogger(ctx).Info("rebuild paused", "days_done", st.DaysDone, "days_total", st.DaysTotal)
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(pauseCh, onPause)
			sel.AddReceive(resumeCh, onResume)
			sel.Select(ctx)
			continue
		}
		st.Phase = "rebuilding"
		if st.Paused {
			st.Phase = "pausing"
		}
		sel := workflow.NewSelector(ctx)
		for _, r := range running {
			sel.AddFuture(r.fut, func(f workflow.Future) {
				for j := range running {
					if running[j].i == r.i {
						running = append(running[:j], running[j+1:]...)
						break
					}
				}
				var res store.RebuildResult
				if err := f.Get(ctx, &res); err != nil {
					fatal = fmt.Errorf("rebuilding %s: %w", days[r.i], err)
					return
				}
				results[r.i] = &res
				st.DaysDone++
				st.RowsScanned += res.RowsScanned
				st.Drifted += int64(res.Drifted)
				st.BucketsWritten += res.BucketsWritten
			})
		}
		sel.AddReceive(pauseCh, onPause)
		sel.AddReceive(resumeCh, onResume)
		sel.Select(ctx)
	}
	st.Phase = "done"
	return status(), nil
}

// streamWorkflowID is the id a pipeline's StreamIngestWorkflow runs under
// (the same convention as devstack.StreamWorkflowID).
func streamWorkflowID(pipeline string) string { return "stream-" + pipeline }

func backfillKafka(ctx workflow.Context, in BackfillInput) (BackfillStatus, error) {
	var st BackfillState
	if in.State != nil {
		st = *in.State
	}
	st.Runs++
	phase := "preparing"
	var live *activities.ConsumeProgress
	var handover *BackfillHandover
	status := func() BackfillStatus {
		s := st
		out := BackfillStatus{Mode: in.Mode, Phase: phase, Paused: st.Paused, Pipeline: in.Pipeline, Topic: in.Topic, FromTime: in.FromTime,
			State: &s, Handover: handover}
		switch {
		case live != nil:
			out.Partitions, out.Remaining = live.Partitions, live.Remaining
		case st.Last != nil:
			out.Partitions, out.Remaining = st.Last.Partitions, st.Last.Remaining
			if st.Last.UntilReached {
				out.Remaining = 0
			}
		case st.Replay != nil:
			out.Remaining = st.Replay.Messages
		}
		return out
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (BackfillStatus, error) { return status(), nil }); err != nil {
		return status(), err
	}
	pauseCh := workflow.GetSignalChannel(ctx, SignalPause)
	resumeCh := workflow.GetSignalChannel(ctx, SignalResume)
	progressCh := workflow.GetSignalChannel(ctx, SignalProgress)
	onPause := func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Paused = true }
	onResume := func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Paused = false }
	running := false
	onProgress := func(c workflow.ReceiveChannel, _ bool) {
		var p activities.ProgressSignal
		c.Receive(ctx, &p)
		if running {
			pp := p.Progress
			live = &pp
		}
	}
	applySignals := func() { drainControl(pauseCh, resumeCh, progressCh, &st.Paused, onProgress) }

	// 1. Start offsets stored, stop offsets snapshotted (once).
	if st.Replay == nil {
		pctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 5 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
				MaximumAttempts: 20, NonRetryableErrorTypes: []string{"InvalidInput", activities.ErrTypeOffsetsExist}},
		})
		var plan activities.PrepareReplayResult
		err := workflow.ExecuteActivity(pctx, activities.BackfillPrepareReplayName, activities.PrepareReplayInput{
			Pipeline: in.Pipeline, Topic: in.Topic, FromTime: in.FromTime, Force: in.Force}).Get(ctx, &plan)
		if err != nil {
			phase = "failed"
			return status(), err
		}
		st.Replay = &plan
		workflow.GetLogger(ctx).Info("replay planned", "pipeline", in.Pipeline, "messages", plan.Messages)
	}

	// 2. Replay up to the stop offsets, in consume sessions that pause
	// and resume from kafka_offsets.
	cin := in.consumeInput()
	cin.UntilOffsets = st.Replay.UntilOffsets()
	ao := workflow.ActivityOptions{
		StartToCloseTimeout: time.Duration(in.SessionSeconds)*time.Second + 10*time.Minute,
		HeartbeatTimeout:    time.Duration(in.HeartbeatTimeoutSeconds) * time.Second,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second,
			NonRetryableErrorTypes: []string{"InvalidInput", "InvalidConfig"}},
	}
	var (
		fut     workflow.Future
		cancel  workflow.CancelFunc
		fatal   error
		done    = st.Last != nil && st.Last.UntilReached
		started = 0
	)
	finish := func(f workflow.Future) {
		var prog activities.ConsumeProgress
		err := f.Get(ctx, &prog)
		// A cancelled (paused) session reports its final progress as the
		// cancellation's details, else its last progress signal stands.
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) && canceled.HasDetails() {
			_ = canceled.Details(&prog)
		}
		if prog.Pipeline == "" && live != nil {
			prog = *live
		}
		running, fut, live = false, nil, nil
		cancel()
		st.Sessions++
		if prog.Pipeline != "" {
			p := prog
			st.Last = &p
			st.Messages += prog.Messages
			st.Inserted += prog.Inserted
			st.Duplicates += prog.Duplicates
			st.DeadLetters += prog.DeadLetters
			if prog.UntilReached && err == nil {
				done = true
			}
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
	waitFinish := func() {
		for running {
			sel := workflow.NewSelector(ctx)
			sel.AddFuture(fut, finish)
			sel.AddReceive(progressCh, onProgress)
			sel.Select(ctx)
		}
	}
	for !done {
		applySignals()
		if fatal != nil {
			phase = "failed"
			return status(), fatal
		}
		if st.Paused {
			if running {
				phase = "pausing"
				cancel()
				waitFinish()
				continue // the session may have completed the replay
			}
			phase = "paused"
			workflow.GetLogger(ctx).Info("replay paused", "pipeline", in.Pipeline)
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(resumeCh, onResume)
			sel.AddReceive(pauseCh, onPause)
			sel.AddReceive(progressCh, onProgress)
			sel.Select(ctx)
			continue
		}
		if !running && (started >= 100 || workflow.GetInfo(ctx).GetContinueAsNewSuggested()) {
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return status(), err
			}
			applySignals()
			next := in
			s := st
			next.State = &s
			return status(), workflow.NewContinueAsNewError(ctx, BackfillName, next)
		}
		phase = "replaying"
		if !running {
			var actx workflow.Context
			actx, cancel = workflow.WithCancel(workflow.WithActivityOptions(ctx, ao))
			fut = workflow.ExecuteActivity(actx, activities.ConsumeName, cin)
			running = true
			started++
		}
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(fut, finish)
		sel.AddReceive(pauseCh, onPause)
		sel.AddReceive(resumeCh, onResume)
		sel.AddReceive(progressCh, onProgress)
		sel.Select(ctx)
	}

	// 3. Hand over: the stream resumes from kafka_offsets, exactly where the
	// replay stopped.
	if in.Handover == "stream" {
		phase = "handing_over"
		sin := StreamIngestInput{ConsumeInput: activities.ConsumeInput{Pipeline: in.Pipeline, Topic: in.Topic,
			BatchSize: in.BatchSize, FlushMillis: in.FlushMillis, Writers: in.Writers}}
		handover = &BackfillHandover{WorkflowID: streamWorkflowID(in.Pipeline)}
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            handover.WorkflowID,
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		})
		var exec workflow.Execution
		err := workflow.ExecuteChildWorkflow(cctx, StreamIngestName, sin).GetChildWorkflowExecution().Get(ctx, &exec)
		switch {
		case err == nil:
			handover.RunID = exec.RunID
		case temporal.IsWorkflowExecutionAlreadyStartedError(err):
			handover.AlreadyRunning = true
		default:
			phase = "failed"
			return status(), fmt.Errorf("starting %s %s: %w", StreamIngestName, handover.WorkflowID, err)
		}
		workflow.GetLogger(ctx).Info("replay handed over", "workflow_id", handover.WorkflowID, "already_running", handover.AlreadyRunning)
	}
	applySignals()
	phase = "done"
	return status(), nil
}
