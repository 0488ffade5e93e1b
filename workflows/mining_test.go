package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/mining"
)

func TestMiningRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		in   MiningInput
		want string
	}{
		{MiningInput{}, "jobs:"},
		{MiningInput{Jobs: []string{"trend"}}, "jobs:"},
		{MiningInput{Jobs: []string{"trending", "trending"}}, "jobs:"},
		{MiningInput{Jobs: []string{"trending"}, ToDay: "2026-13-01"}, "to_day:"},
		{MiningInput{Jobs: []string{"trending"}, ToDay: "2026-11-01", FromDay: "2026-11-02"}, "from_day:"},
		{MiningInput{Jobs: []string{"co_share"}, Params: mining.Params{MinSupport: -1}}, "min_support:"},
		{MiningInput{Jobs: []string{"recommend"}, Params: mining.Params{Shards: 5000}}, "shards:"},
		{MiningInput{Jobs: []string{"trending"}, LookbackDays: 1000}, "lookback_days:"},
	} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(MiningWorkflow, workflow.RegisterOptions{Name: MiningName})
		env.ExecuteWorkflow(MiningName, tc.in)
		if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error = %v, want one naming %q", tc.in, err, tc.want)
		}
	}
}

// fakeMining records the calls the workflow makes; shard failShard fails
// for good when set.
type fakeMining struct {
	mu        sync.Mutex
	calls     []string
	maxActive int
	active    int
	failShard int
}

func (f *fakeMining) note(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeMining) register(env *testsuite.TestWorkflowEnvironment) {
	next := int64(0)
	env.RegisterActivityWithOptions(func(_ context.Context, in activities.MiningBeginInput) (mining.Run, error) {
		next++
		f.note("begin " + in.Job + " " + in.FromDay + ".." + in.ToDay)
		return mining.Run{ID: next, Job: in.Job, Params: in.Params}, nil
	}, activity.RegisterOptions{Name: activities.MiningBeginName})
	piece := func(name string) func(context.Context, activities.MiningPiece) (mining.Stats, error) {
		return func(_ context.Context, in activities.MiningPiece) (mining.Stats, error) {
			f.mu.Lock()
			f.active++
			f.maxActive = max(f.maxActive, f.active)
			f.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			f.mu.Lock()
			f.active--
			f.mu.Unlock()
			if name == "shard" && in.Run.Job == mining.JobCoShare && in.Shard == f.failShard {
				return mining.Stats{}, temporal.NewNonRetryableApplicationError("disk full", "Boom", nil)
			}
			return mining.Stats{RowsIn: 10, RowsOut: 1}, nil
		}
	}
	env.RegisterActivityWithOptions(piece("day"), activity.RegisterOptions{Name: activities.MiningTrendingDayName})
	env.RegisterActivityWithOptions(piece("shard"), activity.RegisterOptions{Name: activities.MiningCoShareShardName})
	env.RegisterActivityWithOptions(piece("shard"), activity.RegisterOptions{Name: activities.MiningRecommendShardName})
	env.RegisterActivityWithOptions(func(_ context.Context, in activities.MiningPiece) (mining.Stats, error) {
		f.note("merge " + in.Run.Job)
		return mining.Stats{RowsOut: 42}, nil
	}, activity.RegisterOptions{Name: activities.MiningCoShareMergeName})
	env.RegisterActivityWithOptions(func(_ context.Context, in activities.MiningPublishInput) (mining.Stats, error) {
		f.note("publish " + in.Run.Job)
		return in.Stats, nil
	}, activity.RegisterOptions{Name: activities.MiningPublishName})
	env.RegisterActivityWithOptions(func(_ context.Context, in activities.MiningFailInput) error {
		f.note("fail " + in.Run.Job + ": " + in.Reason)
		return nil
	}, activity.RegisterOptions{Name: activities.MiningFailName})
}

func TestMiningChainsJobsAndBoundsFanOut(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(MiningWorkflow, workflow.RegisterOptions{Name: MiningName})
	f := &fakeMining{failShard: -1}
	f.register(env)
	env.SetStartTime(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC))
	env.ExecuteWorkflow(MiningName, MiningInput{Jobs: []string{"recommend", "co_share", "trending"}, Parallelism: 3, LookbackDays: 7,
		Params: mining.Params{Shards: 5}})
	var res MiningResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := []string{"begin trending 2026-11-21..2026-11-22", "publish trending", "begin co_share 2026-11-16..2026-11-22",
		"merge co_share", "publish co_share", "begin recommend 2026-11-16..2026-11-22", "publish recommend"}
	if strings.Join(f.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	if len(res.Runs) != 3 || res.Runs[0].Pieces != 2 || res.Runs[1].Pieces != 5 || res.Runs[1].Stats.RowsIn != 50 || res.Runs[1].Stats.RowsOut != 42 {
		t.Fatalf("result %+v", res)
	}
	if f.maxActive > 3 || f.maxActive < 2 {
		t.Fatalf("at most %d pieces ran at once, want 2-3 (parallelism 3)", f.maxActive)
	}
}

func TestMiningFailedShardFailsTheRunWithoutPublishing(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(MiningWorkflow, workflow.RegisterOptions{Name: MiningName})
	f := &fakeMining{failShard: 2}
	f.register(env)
	env.ExecuteWorkflow(MiningName, MiningInput{Jobs: []string{"co_share", "recommend"}, ToDay: "2026-11-20", Params: mining.Params{Shards: 4}})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error = %v, want the shard's", err)
	}
	got := strings.Join(f.calls, "|")
	if !strings.Contains(got, "fail co_share: ") || strings.Contains(got, "publish") || strings.Contains(got, "recommend") {
		t.Fatalf("calls: %s; want the run failed, nothing published, recommend not started", got)
	}
}
