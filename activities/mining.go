package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/sluicedata/sluice/internal/mining"
)

// Registered names of MiningWorkflow's activities.
const (
	MiningBeginName          = "MiningBegin"
	MiningTrendingDayName    = "MiningTrendingDay"
	MiningCoShareShardName   = "MiningCoShareShard"
	MiningCoShareMergeName   = "MiningCoShareMerge"
	MiningRecommendShardName = "MiningRecommendShard"
	MiningPublishName        = "MiningPublish"
	MiningFailName           = "MiningFail"
)

func registerMining(r worker.ActivityRegistry, a *Activities) {
	r.RegisterActivityWithOptions(a.MiningBegin, activity.RegisterOptions{Name: MiningBeginName})
	r.RegisterActivityWithOptions(a.MiningTrendingDay, activity.RegisterOptions{Name: MiningTrendingDayName})
	r.RegisterActivityWithOptions(a.MiningCoShareShard, activity.RegisterOptions{Name: MiningCoShareShardName})
	r.RegisterActivityWithOptions(a.MiningCoShareMerge, activity.RegisterOptions{Name: MiningCoShareMergeName})
	r.RegisterActivityWithOptions(a.MiningRecommendShard, activity.RegisterOptions{Name: MiningRecommendShardName})
	r.RegisterActivityWithOptions(a.MiningPublish, activity.RegisterOptions{Name: MiningPublishName})
	r.RegisterActivityWithOptions(a.MiningFail, activity.RegisterOptions{Name: MiningFailName})
}

// MiningBeginInput asks for a run of one job over [FromDay, ToDay].
type MiningBeginInput struct {
	Job     string        `json:"job"`
	FromDay string        `json:"from_day"`
	ToDay   string        `json:"to_day"`
	Params  mining.Params `json:"params"`
	Pieces  int           `json:"pieces"`
}

// MiningPiece is one fanned-out piece of a run: a day (trending) or a user
// shard (co_share, recommend). Only these references travel through
// workflow history, never rows.
type MiningPiece struct {
	Run   mining.Run `json:"run"`
	Day   string     `json:"day,omitempty"`
	Shard int        `json:"shard"`
}

// MiningPublishInput publishes a run with its summed statistics.
type MiningPublishInput struct {
	Run   mining.Run   `json:"run"`
	Stats mining.Stats `json:"stats"`
}

// MiningFailInput marks a run failed.
type MiningFailInput struct {
	Run    mining.Run `json:"run"`
	Reason string     `json:"reason"`
}

// MiningBegin registers the run in mining_runs (idempotent per workflow
// run and job) and gives it its result partition.
func (a *Activities) MiningBegin(ctx context.Context, in MiningBeginInput) (mining.Run, error) {
	from, err1 := time.Parse(time.DateOnly, in.FromDay)
	to, err2 := time.Parse(time.DateOnly, in.ToDay)
	if err1 != nil || err2 != nil {
		err := fmt.Errorf("from_day/to_day: want YYYY-MM-DD, got %q and %q", in.FromDay, in.ToDay)
		return mining.Run{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", err)
	}
	info := activity.GetInfo(ctx)
	run, err := mining.Begin(ctx, a.db, mining.BeginSpec{Job: in.Job, From: from, To: to, Params: in.Params, Shards: in.Pieces,
		WorkflowID: info.WorkflowExecution.ID, WorkflowRunID: info.WorkflowExecution.RunID}, time.Now())
	if errors.Is(err, mining.ErrNoCoShareRun) {
		return run, temporal.NewNonRetryableApplicationError(err.Error(), "NoCoShareRun", err)
	}
	return run, err
}

// withHeartbeats runs fn while heartbeating (every second, or a third of the
// heartbeat timeout when shorter) with the latest
// progress fn reported (the Temporal UI shows it on the pending activity).
// A long SQL statement or an in-memory phase reports nothing for a while but
// its worker is alive; a killed worker stops heartbeating and Temporal
// retries the piece elsewhere after the heartbeat timeout.
func withHeartbeats(ctx context.Context, fn func(mining.Progress) (mining.Stats, error)) (mining.Stats, error) {
	var mu sync.Mutex
	details := map[string]int64{"started": 1}
	progress := func(phase string, n int64) {
		mu.Lock()
		details = map[string]int64{phase: n}
		mu.Unlock()
	}
	beat := func() {
		mu.Lock()
		d := details
		mu.Unlock()
		activity.RecordHeartbeat(ctx, d)
	}
	beat()
	done := make(chan struct{})
	defer close(done)
	// Beat well inside the heartbeat timeout; the SDK throttles what it
	// sends to the server to about 0.8 of it.
	every := time.Second
	if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 && hb/3 < every {
		every = max(hb/3, 50*time.Millisecond)
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	}()
	return fn(progress)
}

// MiningTrendingDay ranks one day into the run's stage.
func (a *Activities) MiningTrendingDay(ctx context.Context, in MiningPiece) (mining.Stats, error) {
	day, err := time.Parse(time.DateOnly, in.Day)
	if err != nil {
		err = fmt.Errorf("day: want YYYY-MM-DD, got %q", in.Day)
		return mining.Stats{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", err)
	}
	return withHeartbeats(ctx, func(mining.Progress) (mining.Stats, error) {
		return mining.TrendingDay(ctx, a.db, in.Run, day, in.Run.Params)
	})
}

// MiningCoShareShard counts one user shard's co-shared pairs.
func (a *Activities) MiningCoShareShard(ctx context.Context, in MiningPiece) (mining.Stats, error) {
	return withHeartbeats(ctx, func(p mining.Progress) (mining.Stats, error) {
		return mining.CoShareShard(ctx, a.db, in.Run, in.Shard, p)
	})
}

// MiningCoShareMerge merges the shards and writes the run's co_shares.
func (a *Activities) MiningCoShareMerge(ctx context.Context, in MiningPiece) (mining.Stats, error) {
	return withHeartbeats(ctx, func(p mining.Progress) (mining.Stats, error) {
		return mining.CoShareMerge(ctx, a.db, in.Run, p)
	})
}

// MiningRecommendShard writes one user shard's recommendations.
func (a *Activities) MiningRecommendShard(ctx context.Context, in MiningPiece) (mining.Stats, error) {
	return withHeartbeats(ctx, func(p mining.Progress) (mining.Stats, error) {
		return mining.RecommendShard(ctx, a.db, a.graphs, in.Run, in.Shard, p)
	})
}

// MiningPublish makes the run visible to readers in one transaction.
func (a *Activities) MiningPublish(ctx context.Context, in MiningPublishInput) (mining.Stats, error) {
	return mining.Publish(ctx, a.db, in.Run, in.Stats, time.Now())
}

// MiningFail marks the run failed and removes what it wrote.
func (a *Activities) MiningFail(ctx context.Context, in MiningFailInput) error {
	return mining.Fail(ctx, a.db, in.Run, in.Reason, time.Now())
}
