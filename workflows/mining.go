package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/mining"
)

// MiningName is the registered name of MiningWorkflow.
const MiningName = "MiningWorkflow"

// MiningInput is MiningWorkflow's input. Only jobs is required.
type MiningInput struct {
	// Jobs to run, any of "trending", "co_share", "recommend"; they run in
	// that order, so ["co_share","recommend"] recommends from the fresh pairs.
	Jobs []string `json:"jobs"`
	// ToDay is the last UTC day of the window, YYYY-MM-DD (default: today,
	// by the workflow's clock, so schedules need no dates).
	ToDay string `json:"to_day,omitempty"`
	// FromDay is the first day of every job's window (default: ToDay minus
	// days-1 for trending, minus lookback_days-1 for co_share/recommend).
	FromDay string `json:"from_day,omitempty"`
	// Days trending ranks when from_day is not set (default 2: yesterday is
	// finished after midnight, today is refreshed).
	Days int `json:"days,omitempty"`
	// LookbackDays of shares co_share and recommend read (default 30).
	LookbackDays int `json:"lookback_days,omitempty"`
	// HeartbeatTimeoutSeconds: a piece that reports no progress for this
	// long (its worker died) is retried on another worker (default 60).
	HeartbeatTimeoutSeconds int `json:"heartbeat_timeout_seconds,omitempty"`
	// Parallelism bounds the pieces run at once (default 4; each co_share or
	// recommend shard holds its users' baskets in a worker's memory).
	Parallelism int `json:"parallelism,omitempty"`
	mining.Params
}

// MiningRunResult is one job's run.
type MiningRunResult struct {
	Job    string       `json:"job"`
	RunID  int64        `json:"run_id"`
	From   string       `json:"from_day"`
	To     string       `json:"to_day"`
	Pieces int          `json:"pieces"`
	Stats  mining.Stats `json:"stats"`
}

// MiningResult lists the runs in the order they ran.
type MiningResult struct {
	Runs []MiningRunResult `json:"runs"`
}

func invalidInput(what string, err error) error {
	return temporal.NewNonRetryableApplicationError("invalid "+what+" input: "+err.Error(), "InvalidInput", err)
}

// normalise validates the input and fills in the defaults.
func (in *MiningInput) normalise(now time.Time) error {
	if in.Days == 0 {
		in.Days = 2
	}
	if in.LookbackDays == 0 {
		in.LookbackDays = 30
	}
	if in.Parallelism == 0 {
		in.Parallelism = 4
	}
	if in.HeartbeatTimeoutSeconds == 0 {
		in.HeartbeatTimeoutSeconds = 60
	}
	in.Params = in.Params.WithDefaults()
	if len(in.Jobs) == 0 {
		return fmt.Errorf("jobs: required, any of %v", mining.Jobs)
	}
	seen := map[string]bool{}
	for _, j := range in.Jobs {
		known := false
		for _, k := range mining.Jobs {
			known = known || j == k
		}
		if !known {
			return fmt.Errorf("jobs: unknown job %q, want any of %v", j, mining.Jobs)
		}
		if seen[j] {
			return fmt.Errorf("jobs: %q listed twice", j)
		}
		seen[j] = true
	}
	if in.ToDay == "" {
		in.ToDay = now.UTC().Format(time.DateOnly)
	}
	to, err := time.Parse(time.DateOnly, in.ToDay)
	if err != nil {
		return fmt.Errorf("to_day: want YYYY-MM-DD, got %q", in.ToDay)
	}
	if in.FromDay != "" {
		from, err := time.Parse(time.DateOnly, in.FromDay)
		if err != nil {
			return fmt.Errorf("from_day: want YYYY-MM-DD, got %q", in.FromDay)
		}
		if from.After(to) {
			return fmt.Errorf("from_day: %s is after to_day %s", in.FromDay, in.ToDay)
		}
		if to.Sub(from) > 400*24*time.Hour {
			return fmt.Errorf("from_day: window longer than 400 days")
		}
	}
	switch {
	case in.Days < 1 || in.Days > 400:
		return fmt.Errorf("days: must be 1-400, got %d", in.Days)
	case in.LookbackDays < 1 || in.LookbackDays > 400:
		return fmt.Errorf("lookback_days: must be 1-400, got %d", in.LookbackDays)
	case in.Parallelism < 1 || in.Parallelism > 256:
		return fmt.Errorf("parallelism: must be 1-256, got %d", in.Parallelism)
	case in.HeartbeatTimeoutSeconds < 2 || in.HeartbeatTimeoutSeconds > 3600:
		return fmt.Errorf("heartbeat_timeout_seconds: must be 2-3600, got %d", in.HeartbeatTimeoutSeconds)
	}
	return in.Params.Validate()
}

// window is the [from, to] days of one job.
func (in *MiningInput) window(job string) (string, string) {
	if in.FromDay != "" {
		return in.FromDay, in.ToDay
	}
	to, _ := time.Parse(time.DateOnly, in.ToDay)
	days := in.LookbackDays
	if job == mining.JobTrending {
		days = in.Days
	}
	return to.AddDate(0, 0, -(days - 1)).Format(time.DateOnly), in.ToDay
}

// MiningWorkflow runs offline mining jobs over a window. Each job is one
// run: registered in mining_runs, fanned out as activities (one per day for
// trending, one per user shard for co_share and recommend) that any free
// worker picks up, merged, and published in one transaction so readers see
// the previous results or the new ones, never a mix. A failed run is marked
// failed and its partial output removed.
func MiningWorkflow(ctx workflow.Context, in MiningInput) (MiningResult, error) {
	var out MiningResult
	if err := in.normalise(workflow.Now(ctx)); err != nil {
		return out, invalidInput(MiningName, err)
	}
	retry := &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		MaximumAttempts: 8, NonRetryableErrorTypes: []string{"InvalidInput", "NoCoShareRun"}}
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 5 * time.Minute, RetryPolicy: retry})
	long := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout: time.Duration(in.HeartbeatTimeoutSeconds) * time.Second, RetryPolicy: retry})
	for _, job := range mining.Jobs {
		wanted := false
		for _, j := range in.Jobs {
			wanted = wanted || j == job
		}
		if !wanted {
			continue
		}
		res, err := runMiningJob(ctx, short, long, &in, job)
		if err != nil {
			return out, err
		}
		out.Runs = append(out.Runs, res)
	}
	return out, nil
}

func runMiningJob(ctx, short, long workflow.Context, in *MiningInput, job string) (MiningRunResult, error) {
	from, to := in.window(job)
	res := MiningRunResult{Job: job, From: from, To: to}
	var pieces []activities.MiningPiece
	if job == mining.JobTrending {
		start, _ := time.Parse(time.DateOnly, from)
		end, _ := time.Parse(time.DateOnly, to)
		for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
			pieces = append(pieces, activities.MiningPiece{Day: d.Format(time.DateOnly)})
		}
	} else {
		for s := 0; s < in.Shards; s++ {
			pieces = append(pieces, activities.MiningPiece{Shard: s})
		}
	}
	res.Pieces = len(pieces)
	var run mining.Run
	if err := workflow.ExecuteActivity(short, activities.MiningBeginName, activities.MiningBeginInput{
		Job: job, FromDay: from, ToDay: to, Params: in.Params, Pieces: len(pieces)}).Get(ctx, &run); err != nil {
		return res, err
	}
	res.RunID = run.ID
	fail := func(err error) (MiningRunResult, error) {
		dctx, _ := workflow.NewDisconnectedContext(short)
		_ = workflow.ExecuteActivity(dctx, activities.MiningFailName, activities.MiningFailInput{Run: run, Reason: err.Error()}).Get(dctx, nil)
		return res, err
	}
	activity := map[string]string{mining.JobTrending: activities.MiningTrendingDayName,
		mining.JobCoShare: activities.MiningCoShareShardName, mining.JobRecommend: activities.MiningRecommendShardName}[job]
	for i := range pieces {
		pieces[i].Run = run
	}
	st, err := fanOut(ctx, long, activity, pieces, in.Parallelism)
	if err != nil {
		return fail(err)
	}
	if job == mining.JobCoShare {
		var merged mining.Stats
		if err := workflow.ExecuteActivity(long, activities.MiningCoShareMergeName, activities.MiningPiece{Run: run}).Get(ctx, &merged); err != nil {
			return fail(err)
		}
		st.RowsOut = merged.RowsOut
		st.Pairs = merged.Pairs
	}
	if err := workflow.ExecuteActivity(short, activities.MiningPublishName, activities.MiningPublishInput{Run: run, Stats: st}).Get(ctx, &res.Stats); err != nil {
		return fail(err)
	}
	return res, nil
}

// fanOut runs one activity per piece, at most parallelism at once, and sums
// their statistics; the first failure cancels the rest.
func fanOut(ctx, actx workflow.Context, name string, pieces []activities.MiningPiece, parallelism int) (mining.Stats, error) {
	var total mining.Stats
	cctx, cancel := workflow.WithCancel(actx)
	defer cancel()
	sel := workflow.NewSelector(ctx)
	var firstErr error
	running, next := 0, 0
	for next < len(pieces) || running > 0 {
		for firstErr == nil && running < parallelism && next < len(pieces) {
			f := workflow.ExecuteActivity(cctx, name, pieces[next])
			next++
			running++
			sel.AddFuture(f, func(f workflow.Future) {
				running--
				var st mining.Stats
				if err := f.Get(ctx, &st); err != nil {
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					return
				}
				total = total.Add(st)
			})
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	return total, firstErr
}
