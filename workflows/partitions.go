package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/store"
)

// PartitionMaintenanceName is the registered name of PartitionMaintenanceWorkflow.
const PartitionMaintenanceName = "PartitionMaintenanceWorkflow"

// PartitionMaintenanceResult reports what the run did per table.
type PartitionMaintenanceResult struct {
	Date   string                   `json:"date"`
	Tables []store.TableMaintenance `json:"tables"`
}

// PartitionMaintenanceWorkflow keeps daily partitions from yesterday through
// days_ahead days ahead (splitting the catch-all) and drops those past each
// table's retention. `sluice dev` schedules it daily.
func PartitionMaintenanceWorkflow(ctx workflow.Context, in activities.PartitionMaintenanceInput) (PartitionMaintenanceResult, error) {
	if in.Date == "" {
		in.Date = workflow.Now(ctx).UTC().Format("2006-01-02")
	}
	if in.DaysAhead == 0 {
		in.DaysAhead = 7
	}
	if err := in.Validate(); err != nil {
		return PartitionMaintenanceResult{}, temporal.NewNonRetryableApplicationError("invalid PartitionMaintenanceWorkflow input: "+err.Error(), "InvalidInput", err)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute, MaximumAttempts: 20,
			NonRetryableErrorTypes: []string{"InvalidInput"},
		},
	})
	out := PartitionMaintenanceResult{Date: in.Date}
	err := workflow.ExecuteActivity(ctx, activities.MaintainPartitionsName, in).Get(ctx, &out.Tables)
	return out, err
}
