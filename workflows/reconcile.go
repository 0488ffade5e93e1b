package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/store"
)

// ReconcileName is the registered name of ReconcileWorkflow.
const ReconcileName = "ReconcileWorkflow"

// ReconcileInput is ReconcileWorkflow's input.
type ReconcileInput struct {
	// From and To bound the window [from, to), RFC 3339; it must be closed:
	// To at least GraceSeconds in the past.
	From string `json:"from"`
	To   string `json:"to"`
	// Repair sets drifted buckets to the recomputed counts.
	Repair bool `json:"repair,omitempty"`
	// MaxReport bounds the drifts listed in detail per day (default 100).
	MaxReport int `json:"max_report,omitempty"`
	// GraceSeconds: how far behind now a window must end (default 120).
	GraceSeconds int `json:"grace_seconds,omitempty"`
}

// ReconcileResult merges the per-day reports.
type ReconcileResult struct {
	Differences int                          `json:"differences"`
	Repaired    int                          `json:"repaired"`
	Days        []activities.ReconcileReport `json:"days"`
	Drifts      []store.Drift                `json:"drifts,omitempty"`
}

// ReconcileWorkflow recomputes a closed window of item_counts_minute from
// events (one activity per UTC day, in parallel; only time ranges travel
// through history), reports every difference and repairs on request.
func ReconcileWorkflow(ctx workflow.Context, in ReconcileInput) (ReconcileResult, error) {
	if in.MaxReport == 0 {
		in.MaxReport = 100
	}
	if in.GraceSeconds == 0 {
		in.GraceSeconds = 120
	}
	from, err1 := time.Parse(time.RFC3339, in.From)
	to, err2 := time.Parse(time.RFC3339, in.To)
	var bad error
	switch {
	case err1 != nil:
		bad = fmt.Errorf("from: want an RFC 3339 time, got %q", in.From)
	case err2 != nil:
		bad = fmt.Errorf("to: want an RFC 3339 time, got %q", in.To)
	case !to.After(from):
		bad = fmt.Errorf("to: must be after from")
	case to.After(workflow.Now(ctx).Add(-time.Duration(in.GraceSeconds) * time.Second)):
		bad = fmt.Errorf("to: the window is not closed yet (must end at least %d s ago)", in.GraceSeconds)
	case to.Sub(from) > 400*24*time.Hour:
		bad = fmt.Errorf("to: window longer than 400 days")
	}
	if bad != nil {
		return ReconcileResult{}, temporal.NewNonRetryableApplicationError("invalid ReconcileWorkflow input: "+bad.Error(), "InvalidInput", bad)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 10, NonRetryableErrorTypes: []string{"InvalidInput"}},
	})
	var futs []workflow.Future
	from, to = from.UTC(), to.UTC()
	for start := from; start.Before(to); {
		end := time.Date(start.Year(), start.Month(), start.Day()+1, 0, 0, 0, 0, time.UTC)
		if end.After(to) {
			end = to
		}
		futs = append(futs, workflow.ExecuteActivity(ctx, activities.ReconcileName, activities.ReconcileWindow{
			From: start.Format(time.RFC3339), To: end.Format(time.RFC3339), Repair: in.Repair, MaxReport: in.MaxReport}))
		start = end
	}
	var out ReconcileResult
	for _, f := range futs {
		var rep activities.ReconcileReport
		if err := f.Get(ctx, &rep); err != nil {
			return out, err
		}
		out.Days = append(out.Days, rep)
		out.Differences += rep.Differences
		out.Repaired += rep.Repaired
		for _, d := range rep.Drifts {
			if len(out.Drifts) < in.MaxReport {
				out.Drifts = append(out.Drifts, d)
			}
		}
	}
	return out, nil
}
