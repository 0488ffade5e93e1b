package activities

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicedata/sluice/internal/mining"
)

// TestWithHeartbeatsKeepsSilentPhasesAlive: a piece that reports nothing for
// 1.5 s at a time (one long SQL statement) under a 1 s heartbeat timeout
// succeeds on its only attempt when wrapped in withHeartbeats, and times out
// without it.
func TestWithHeartbeatsKeepsSilentPhasesAlive(t *testing.T) {
	piece := func(ctx context.Context, p mining.Progress) (mining.Stats, error) {
		time.Sleep(1500 * time.Millisecond)
		if p != nil {
			p("rows_read", 42)
		}
		time.Sleep(1500 * time.Millisecond)
		return mining.Stats{RowsIn: 42}, nil
	}
	for _, wrapped := range []bool{true, false} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetTestTimeout(30 * time.Second)
		env.RegisterActivityWithOptions(func(ctx context.Context) (mining.Stats, error) {
			if !wrapped {
				return piece(ctx, nil)
			}
			return withHeartbeats(ctx, func(p mining.Progress) (mining.Stats, error) { return piece(ctx, p) })
		}, activity.RegisterOptions{Name: "silent"})
		env.RegisterWorkflowWithOptions(func(ctx workflow.Context) (mining.Stats, error) {
			ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: time.Second,
				RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
			var st mining.Stats
			err := workflow.ExecuteActivity(ctx, "silent").Get(ctx, &st)
			return st, err
		}, workflow.RegisterOptions{Name: "w"})
		env.ExecuteWorkflow("w")
		var st mining.Stats
		err := env.GetWorkflowError()
		if err == nil {
			err = env.GetWorkflowResult(&st)
		}
		switch {
		case wrapped && (err != nil || st.RowsIn != 42):
			t.Fatalf("with heartbeats: %+v %v", st, err)
		case !wrapped && err == nil:
			t.Fatal("without heartbeats the silent piece did not time out: the test proves nothing")
		}
	}
}
