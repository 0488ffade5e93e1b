// Package activities holds every side effect of Sluice's workflows: Kafka
// consumption, MySQL writes and, later, mining computations. Activities are
// methods of one struct of injected dependencies; workflows refer to them by
// their registered names.
package activities

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/mining"
)

// Registered activity names: a durable API, never rename one.
const (
	ConsumeName            = "Consume"
	ReplayDeadLettersName  = "ReplayDeadLetters"
	MaintainPartitionsName = "MaintainPartitions"
	ReconcileName          = "Reconcile"
)

// Registered names of BackfillWorkflow's activities.
const (
	BackfillRebuildDayName    = "BackfillRebuildDay"
	BackfillPrepareReplayName = "BackfillPrepareReplay"
)

// Deps are what the activities need from the process that hosts them.
type Deps struct {
	DB    *sqlx.DB
	Kafka kafka.Config
	// Temporal lets long-running activities signal progress to their
	// workflow; optional.
	Temporal client.Client
	Logger   *slog.Logger
}

// Activities implements Sluice's activities.
type Activities struct {
	db       *sqlx.DB
	kafka    kafka.Config
	temporal client.Client
	logger   *slog.Logger
	// graphs caches the co_share run that recommend shards read.
	graphs *mining.GraphCache
}

// New checks deps and returns the activities.
func New(deps Deps) (*Activities, error) {
	if deps.DB == nil {
		return nil, errors.New("activities: Deps.DB: required")
	}
	if err := deps.Kafka.Validate(); err != nil {
		return nil, fmt.Errorf("activities: Deps.Kafka: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	return &Activities{db: deps.DB, kafka: deps.Kafka, temporal: deps.Temporal, logger: deps.Logger, graphs: &mining.GraphCache{}}, nil
}

// Register registers every activity under its durable name.
func Register(r worker.ActivityRegistry, a *Activities) {
	r.RegisterActivityWithOptions(a.Consume, activity.RegisterOptions{Name: ConsumeName})
	r.RegisterActivityWithOptions(a.ReplayDeadLetters, activity.RegisterOptions{Name: ReplayDeadLettersName})
	r.RegisterActivityWithOptions(a.MaintainPartitions, activity.RegisterOptions{Name: MaintainPartitionsName})
	r.RegisterActivityWithOptions(a.Reconcile, activity.RegisterOptions{Name: ReconcileName})
	registerMining(r, a)
	r.RegisterActivityWithOptions(a.BackfillRebuildDay, activity.RegisterOptions{Name: BackfillRebuildDayName})
	r.RegisterActivityWithOptions(a.BackfillPrepareReplay, activity.RegisterOptions{Name: BackfillPrepareReplayName})
}
