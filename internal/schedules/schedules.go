// Package schedules defines Sluice's default Temporal Schedules and creates
// them idempotently.
package schedules

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/mining"
	"github.com/sluicedata/sluice/workflows"
)

// Def is one schedule: a workflow started on a cron spec.
type Def struct {
	ID       string
	Cron     string // standard 5-field cron, UTC
	Workflow string
	Input    any
	// Overlap is what happens when a run is still going at the next time.
	Overlap enumspb.ScheduleOverlapPolicy
	// CatchupWindow is how late a missed run (server down) may still start.
	CatchupWindow time.Duration
	Note          string
}

// Defaults are the schedules `sluice dev` registers.
func Defaults() []Def {
	return []Def{{
		ID:            "partition-maintenance",
		Cron:          "15 0 * * *",
		Workflow:      workflows.PartitionMaintenanceName,
		Input:         activities.PartitionMaintenanceInput{DaysAhead: 7},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: 24 * time.Hour,
		Note:          "daily partitions from yesterday to 7 days ahead; drop past retention",
	}, {
		ID:            "mining-trending",
		Cron:          "5 * * * *",
		Workflow:      workflows.MiningName,
		Input:         workflows.MiningInput{Jobs: []string{mining.JobTrending}, Days: 2},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: time.Hour,
		Note:          "hourly: trending_daily for yesterday and today",
	}, {
		ID:            "mining-co-share-recommend",
		Cron:          "30 1 * * *",
		Workflow:      workflows.MiningName,
		Input:         workflows.MiningInput{Jobs: []string{mining.JobCoShare, mining.JobRecommend}, LookbackDays: 30},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: 24 * time.Hour,
		Note:          "daily: co_shares over 30 days, then recommendations from them",
	}}
}

// Options turns a Def into Temporal schedule options on taskQueue.
func (d Def) Options(taskQueue string) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:            d.ID,
		Spec:          client.ScheduleSpec{CronExpressions: []string{d.Cron}},
		Overlap:       d.Overlap,
		CatchupWindow: d.CatchupWindow,
		Note:          d.Note,
		Action: &client.ScheduleWorkflowAction{
			ID:        d.ID,
			Workflow:  d.Workflow,
			Args:      []any{d.Input},
			TaskQueue: taskQueue,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute, MaximumAttempts: 5,
			},
		},
	}
}

// Ensure creates the schedules that do not exist yet and leaves existing
// ones (possibly edited or paused by an operator) alone. It returns the IDs
// it created.
func Ensure(ctx context.Context, c client.Client, taskQueue string, defs []Def) ([]string, error) {
	var created []string
	for _, d := range defs {
		_, err := c.ScheduleClient().Create(ctx, d.Options(taskQueue))
		var exists *serviceerror.AlreadyExists
		switch {
		case err == nil:
			created = append(created, d.ID)
		case errors.Is(err, temporal.ErrScheduleAlreadyRunning), errors.As(err, &exists):
		default:
			return created, fmt.Errorf("creating schedule %s: %w", d.ID, err)
		}
	}
	return created, nil
}
