package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicedata/sluice/activities"
)

// DeadLetterReplayName is the registered name of DeadLetterReplayWorkflow.
const DeadLetterReplayName = "DeadLetterReplayWorkflow"

// DeadLetterReplayWorkflow re-ingests chosen dead letters after a fix (a
// relaxed rule, a widened column, time passing for a future timestamp),
// each exactly once. Input: activities.ReplayInput; from/to default to the
// last 7 days.
func DeadLetterReplayWorkflow(ctx workflow.Context, in activities.ReplayInput) (activities.ReplayProgress, error) {
	today := workflow.Now(ctx).UTC()
	if in.To == "" {
		in.To = today.Format("2006-01-02")
	}
	if in.From == "" {
		in.From = today.AddDate(0, 0, -7).Format("2006-01-02")
	}
	if err := in.Validate(); err != nil {
		return activities.ReplayProgress{}, temporal.NewNonRetryableApplicationError("invalid DeadLetterReplayWorkflow input: "+err.Error(), "InvalidInput", err)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{"InvalidInput"},
		},
	})
	var out activities.ReplayProgress
	err := workflow.ExecuteActivity(ctx, activities.ReplayDeadLettersName, in).Get(ctx, &out)
	return out, err
}
