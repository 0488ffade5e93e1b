package mining

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/store"
)

// Run statuses in mining_runs.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// runTable is the LIST-partitioned table a job writes under its run id
// ("" for trending, which is staged and then copied into trending_daily).
func runTable(job string) string {
	switch job {
	case JobCoShare:
		return "co_shares"
	case JobRecommend:
		return "recommendations"
	}
	return ""
}

// Run is one mining run as Begin registered it.
type Run struct {
	ID     int64     `json:"run_id"`
	Job    string    `json:"job"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Params Params    `json:"params"`
}

// BeginSpec describes the run to register.
type BeginSpec struct {
	Job           string
	From, To      time.Time // UTC days, To inclusive
	Params        Params
	Shards        int
	WorkflowID    string
	WorkflowRunID string
}

// ErrNoCoShareRun: recommend needs a published co_share run.
var ErrNoCoShareRun = errors.New("recommend: no published co_share run yet; run the co_share job first")

// Begin registers a run in mining_runs (status running) and gives it its
// partition. It is idempotent per (workflow id, workflow run id, job): a
// retried activity gets the same run, with the parameters first stored.
// A recommend run pins the co_share run it reads (the current one) here.
func Begin(ctx context.Context, db *sqlx.DB, spec BeginSpec, now time.Time) (Run, error) {
	p := spec.Params
	if spec.Job == JobRecommend && p.CoShareRunID == 0 {
		cur, err := Current(ctx, db, JobCoShare)
		if err != nil {
			return Run{}, err
		}
		if cur == 0 {
			return Run{}, ErrNoCoShareRun
		}
		p.CoShareRunID = cur
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return Run{}, err
	}
	res, err := db.ExecContext(ctx, `INSERT INTO mining_runs
  (job, window_from, window_to, params, status, shards, workflow_id, workflow_run_id, started_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE run_id = LAST_INSERT_ID(run_id)`,
		spec.Job, spec.From.Format(dayLayout), spec.To.Format(dayLayout), string(raw), StatusRunning, spec.Shards,
		spec.WorkflowID, spec.WorkflowRunID, now.UTC())
	if err != nil {
		return Run{}, fmt.Errorf("registering %s run: %w", spec.Job, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Run{}, err
	}
	var stored struct {
		Params string `db:"params"`
		Status string `db:"status"`
	}
	if err := db.GetContext(ctx, &stored, "SELECT params, status FROM mining_runs WHERE run_id = ?", id); err != nil {
		return Run{}, fmt.Errorf("reading run %d: %w", id, err)
	}
	if stored.Status != StatusRunning {
		return Run{}, fmt.Errorf("run %d is already %s", id, stored.Status)
	}
	run := Run{ID: id, Job: spec.Job, From: spec.From, To: spec.To}
	if err := json.Unmarshal([]byte(stored.Params), &run.Params); err != nil {
		return Run{}, fmt.Errorf("run %d params: %w", id, err)
	}
	if t := runTable(spec.Job); t != "" {
		if err := store.AddRunPartition(ctx, db, t, id); err != nil {
			return Run{}, err
		}
	}
	return run, nil
}

// Current is the published run of job that readers use: the newest
// succeeded one (0 when there is none).
func Current(ctx context.Context, db sqlx.QueryerContext, job string) (int64, error) {
	var id sql.NullInt64
	if err := sqlx.GetContext(ctx, db, &id, "SELECT MAX(run_id) FROM mining_runs WHERE job = ? AND status = ?", job, StatusSucceeded); err != nil {
		return 0, fmt.Errorf("finding the current %s run: %w", job, err)
	}
	return id.Int64, nil
}

// Publish makes a run visible in one transaction: trending copies its staged
// days over trending_daily's; co_share and recommend just flip the status
// (readers pick the newest succeeded run). Publishing twice is a no-op.
// Afterwards it removes staging data and the partitions of superseded runs.
func Publish(ctx context.Context, db *sqlx.DB, run Run, st Stats, now time.Time) (Stats, error) {
	tx, err := db.BeginTxx(ctx, readCommitted)
	if err != nil {
		return st, err
	}
	defer func() { _ = tx.Rollback() }()
	var status string
	if err := tx.GetContext(ctx, &status, "SELECT status FROM mining_runs WHERE run_id = ? FOR UPDATE", run.ID); err != nil {
		return st, fmt.Errorf("locking run %d: %w", run.ID, err)
	}
	switch status {
	case StatusSucceeded:
		return st, nil
	case StatusFailed:
		return st, fmt.Errorf("run %d was marked failed; start a new run", run.ID)
	}
	if run.Job == JobTrending {
		if _, err := tx.ExecContext(ctx, "DELETE FROM trending_daily WHERE day BETWEEN ? AND ?",
			run.From.Format(dayLayout), run.To.Format(dayLayout)); err != nil {
			return st, fmt.Errorf("replacing trending_daily: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO trending_daily (day, city, rank_no, item_id, users, shares, run_id)
SELECT day, city, rank_no, item_id, users, shares, run_id FROM trending_stage WHERE run_id = ?`, run.ID)
		if err != nil {
			return st, fmt.Errorf("publishing trending_daily: %w", err)
		}
		n, _ := res.RowsAffected()
		st.RowsOut = n
		if _, err := tx.ExecContext(ctx, "DELETE FROM trending_stage WHERE run_id = ?", run.ID); err != nil {
			return st, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE mining_runs SET status = ?, rows_in = ?, rows_out = ?, finished_at = ?, error = NULL
WHERE run_id = ?`, StatusSucceeded, st.RowsIn, st.RowsOut, now.UTC(), run.ID); err != nil {
		return st, err
	}
	if err := tx.Commit(); err != nil {
		return st, fmt.Errorf("publishing run %d: %w", run.ID, err)
	}
	return st, cleanup(ctx, db, run, now)
}

// Fail marks a run failed and removes what it wrote; readers never saw it.
func Fail(ctx context.Context, db *sqlx.DB, run Run, reason string, now time.Time) error {
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	if _, err := db.ExecContext(ctx, "UPDATE mining_runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND status = ?",
		StatusFailed, reason, now.UTC(), run.ID, StatusRunning); err != nil {
		return fmt.Errorf("marking run %d failed: %w", run.ID, err)
	}
	return cleanup(ctx, db, run, now)
}

// cleanup deletes the run's staging rows and drops the partitions of runs
// that no reader needs: failed runs, runs left running for over a day
// (their workflow is gone), and succeeded runs older than the previous
// published one (the previous one stays so that a reader or a recommend
// run that started on it can finish).
func cleanup(ctx context.Context, db *sqlx.DB, run Run, now time.Time) error {
	if _, err := db.ExecContext(ctx, "DELETE FROM trending_stage WHERE run_id = ?", run.ID); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM mining_partials WHERE run_id = ?", run.ID); err != nil {
		return err
	}
	table := runTable(run.Job)
	if table == "" {
		return nil
	}
	var keep []int64
	if err := db.SelectContext(ctx, &keep, `SELECT run_id FROM mining_runs WHERE job = ? AND status = ? ORDER BY run_id DESC LIMIT 2`,
		run.Job, StatusSucceeded); err != nil {
		return err
	}
	var live []int64
	if err := db.SelectContext(ctx, &live, `SELECT run_id FROM mining_runs WHERE job = ? AND status = ? AND started_at > ?`,
		run.Job, StatusRunning, now.UTC().Add(-24*time.Hour)); err != nil {
		return err
	}
	have, err := store.RunPartitions(ctx, db, table)
	if err != nil {
		return err
	}
	keepSet := map[int64]bool{}
	for _, id := range append(keep, live...) {
		keepSet[id] = true
	}
	var drop []int64
	for _, id := range have {
		if !keepSet[id] {
			drop = append(drop, id)
		}
	}
	_, err = store.DropRunPartitions(ctx, db, table, drop)
	return err
}
