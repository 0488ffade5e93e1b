package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/devstack"
	"github.com/sluicedata/sluice/internal/store"
)

// Round is one pass of (a) at its best point, (c) and (b) over the same
// rows, back to back.
type Round struct {
	Round             int     `json:"round"`
	CeilingRowsPerSec float64 `json:"ceiling_rows_per_s,omitempty"`
	E2EEventsPerSec   float64 `json:"e2e_events_per_s,omitempty"`
	BareEventsPerSec  float64 `json:"bare_events_per_s,omitempty"`
	RatioE2ECeiling   float64 `json:"ratio_e2e_ceiling,omitempty"`
	RatioE2EBare      float64 `json:"ratio_e2e_bare,omitempty"`

	E2ESeconds            float64 `json:"e2e_s,omitempty"`
	E2EFirstCommitSeconds float64 `json:"e2e_first_commit_s,omitempty"`
	E2ESteadyEventsPerSec float64 `json:"e2e_steady_events_per_s,omitempty"`
	BareSeconds           float64 `json:"bare_s,omitempty"`
	BareFirstCommitSecs   float64 `json:"bare_first_commit_s,omitempty"`
	BareSteadyEventsPerS  float64 `json:"bare_steady_events_per_s,omitempty"`

	CPU        map[string]CPUUse  `json:"cpu,omitempty"`
	CPUProbeMs map[string]float64 `json:"cpu_probe_ms,omitempty"`
}

// rounds generates and pre-produces the events, then runs the rounds: the
// first finds the ceiling's best point with the sweep, the later ones run
// that point again; each runs (a), (c) and (b) back to back, in turn
// forwards and backwards.
func (r *runner) rounds(ctx context.Context) error {
	rows, err := r.prepareEvents(ctx)
	if err != nil {
		return err
	}
	var db *sqlx.DB
	if !r.cfg.SkipCeiling {
		if db, err = store.Open(ctx, r.dsn(r.dbName)); err != nil {
			return err
		}
		defer db.Close()
		db.SetMaxIdleConns(32)
		defer func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+ceilingTable) }()
	}
	if err := r.warmUp(ctx); err != nil {
		return err
	}
	var best ceilingRun
	for round := 1; round <= r.cfg.Rounds; round++ {
		rd := Round{Round: round, CPU: map[string]CPUUse{}}
		ceiling := func() error {
			if r.cfg.SkipCeiling {
				return nil
			}
			var err error
			if round == 1 {
				best, err = r.ceiling(ctx, db, rows, &rd)
			} else {
				err = r.ceilingAgain(ctx, db, rows, best, round, &rd)
			}
			if err != nil {
				return fmt.Errorf("ceiling: %w", err)
			}
			return nil
		}
		bare := func() error {
			if r.cfg.SkipBare {
				return nil
			}
			if err := r.bare(ctx, round, &rd); err != nil {
				return fmt.Errorf("bare loop: %w", err)
			}
			return nil
		}
		e2e := func() error {
			if r.cfg.SkipE2E {
				return nil
			}
			if err := r.e2e(ctx, round, &rd); err != nil {
				return fmt.Errorf("end to end: %w", err)
			}
			if round < r.cfg.Rounds {
				// Its consumer would take a share of (d)'s events otherwise.
				_ = r.stack.Client.TerminateWorkflow(ctx, devstack.StreamWorkflowID(r.e2ePipeline), "", "bench round done")
			}
			return nil
		}
		// (b) runs in the middle, right next to both phases its ratios
		// divide by: the VM's speed drifts over tens of seconds, and with
		// (c) between them (a) and (b) had often run at different speeds.
		// Odd rounds run ceiling, e2e, bare; even rounds the reverse, so
		// neither side always goes first into the server's state (its
		// buffer pool is touched for the first time in the early rounds).
		// Round 1 starts with the ceiling: its sweep picks the point.
		order := []func() error{ceiling, e2e, bare}
		if round%2 == 0 {
			order = []func() error{bare, e2e, ceiling}
		}
		for _, phase := range order {
			if err := phase(); err != nil {
				return err
			}
		}
		if rd.CeilingRowsPerSec > 0 && rd.E2EEventsPerSec > 0 {
			rd.RatioE2ECeiling = rd.E2EEventsPerSec / rd.CeilingRowsPerSec
		}
		if rd.BareEventsPerSec > 0 && rd.E2EEventsPerSec > 0 {
			rd.RatioE2EBare = rd.E2EEventsPerSec / rd.BareEventsPerSec
		}
		if r.cfg.Rounds > 1 {
			r.say("round %d of %d: ceiling %.0f rows/s, bare %.0f events/s, e2e %.0f events/s; e2e/ceiling %.2f, e2e/bare %.2f",
				round, r.cfg.Rounds, rd.CeilingRowsPerSec, rd.BareEventsPerSec, rd.E2EEventsPerSec, rd.RatioE2ECeiling, rd.RatioE2EBare)
		}
		r.res.Rounds = append(r.res.Rounds, rd)
	}
	r.summarise()
	return nil
}

// warmUp runs (c) and (b) once, unmeasured, before round 1, as the sweep
// of round 1 warms up (a): the worker process, its MySQL connections and
// the pipeline tables' first growth are then not charged to round 1, whose
// (b) had been the slowest of the five in every run.
func (r *runner) warmUp(ctx context.Context) error {
	if r.cfg.SkipWarmUp || r.cfg.Rounds < 2 {
		return nil
	}
	warm := Round{CPU: map[string]CPUUse{}}
	if !r.cfg.SkipBare {
		if err := r.bare(ctx, 0, &warm); err != nil {
			return fmt.Errorf("bare loop warm-up: %w", err)
		}
	}
	if !r.cfg.SkipE2E {
		if err := r.e2e(ctx, 0, &warm); err != nil {
			return fmt.Errorf("end to end warm-up: %w", err)
		}
		_ = r.stack.Client.TerminateWorkflow(ctx, devstack.StreamWorkflowID(r.e2ePipeline), "", "bench warm-up done")
	}
	r.say("warm-up (round 0, not counted): bare %.0f events/s, e2e %.0f events/s", warm.BareEventsPerSec, warm.E2EEventsPerSec)
	return nil
}

// ceilingAgain runs the best point found in the first round on all rows
// into the emptied ceiling table.
func (r *runner) ceilingAgain(ctx context.Context, db *sqlx.DB, rows []row, best ceilingRun, round int, rd *Round) error {
	r.settle(ctx, db)
	r.probe("ceiling_"+best.Method, rd)
	meter := newCPUMeter(ctx, db, r.pids())
	run, err := runCeiling(ctx, db, rows, best.Method, best.Batch, best.Writers)
	if err != nil {
		return err
	}
	cpu := meter.stop(ctx)
	sum, err := checksum(ctx, db, ceilingTable, true)
	if err != nil {
		return err
	}
	if sum != r.ceilingSum {
		return fmt.Errorf("round %d stored different rows than round 1 (%+v vs %+v)", round, sum, r.ceilingSum)
	}
	if err := release(ctx, db, ceilingTable); err != nil {
		return err
	}
	rd.CPU["ceiling"] = cpu
	rd.CeilingRowsPerSec = run.RowsPerSec
	r.say("(a) CEILING %.0f rows/s (round %d): %s, batch %d, %d writers, %d rows in %.2f s. %s",
		run.RowsPerSec, round, run.Method, run.Batch, run.Writers, run.Rows, run.Seconds, cpu)
	r.say("    %s", statusLine(cpu.MySQL, run.Rows))
	return nil
}

// summarise sets the report's figures from the rounds: the median of each
// rate and of each ratio; the per-phase details and CPU are the median
// round's (by e2e/ceiling, else by e2e).
func (r *runner) summarise() {
	res := &r.res
	rs := res.Rounds
	if len(rs) == 0 {
		return
	}
	pick := func(f func(Round) float64) float64 {
		var v []float64
		for _, rd := range rs {
			if x := f(rd); x > 0 {
				v = append(v, x)
			}
		}
		return median(v)
	}
	res.CeilingRowsPerSec = pick(func(rd Round) float64 { return rd.CeilingRowsPerSec })
	res.E2EEventsPerSec = pick(func(rd Round) float64 { return rd.E2EEventsPerSec })
	res.BareEventsPerSec = pick(func(rd Round) float64 { return rd.BareEventsPerSec })
	res.RatioE2ECeiling = pick(func(rd Round) float64 { return rd.RatioE2ECeiling })
	res.RatioE2EBare = pick(func(rd Round) float64 { return rd.RatioE2EBare })

	order := slices.Clone(rs)
	slices.SortStableFunc(order, func(a, b Round) int {
		ka, kb := a.RatioE2ECeiling, b.RatioE2ECeiling
		if ka == 0 && kb == 0 {
			ka, kb = a.E2EEventsPerSec, b.E2EEventsPerSec
		}
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	mid := order[(len(order)-1)/2]
	res.E2ESeconds, res.E2EFirstCommitSeconds, res.E2ESteadyEventsPerSec = mid.E2ESeconds, mid.E2EFirstCommitSeconds, mid.E2ESteadyEventsPerSec
	res.BareSeconds, res.BareFirstCommitSecs, res.BareSteadyEventsPerS = mid.BareSeconds, mid.BareFirstCommitSecs, mid.BareSteadyEventsPerS
	for k, v := range mid.CPU {
		res.CPU[k] = v
	}
	res.MedianRound = mid.Round
	for _, rd := range rs {
		for phase, ms := range rd.CPUProbeMs {
			if res.CPUProbeMs == nil {
				res.CPUProbeMs = map[string]float64{}
			}
			res.CPUProbeMs[phase+"/"+strconv.Itoa(rd.Round)] = ms
		}
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// phaseRows are the tables a pipeline's rows land in; kafka_offsets, its
// position, is not among them.
var phaseRows = []string{"events", "item_counts_minute", "dead_letters"}

// release empties tables a timed phase wrote, once they have been checked.
// TRUNCATE hands their pages back to the buffer pool's free list, so the
// next phase starts with room whichever phase ran before it. Without it the
// pool was full from round 3 on, and a phase that followed itself (which
// the alternating order makes happen) started with the ~20,000 pages its
// own TRUNCATE freed while the others started with ~1,800: e2e/ceiling
// averaged 0.90 in the rounds where (b) followed (b) and 0.77 in the
// others, over three full runs.
func release(ctx context.Context, db *sqlx.DB, tables ...string) error {
	for _, t := range tables {
		if _, err := db.ExecContext(ctx, "TRUNCATE TABLE "+t); err != nil {
			return fmt.Errorf("emptying %s: %w", t, err)
		}
	}
	return nil
}

// emptyPipelineTables empties what a pipeline writes, so a round starts
// from the same empty tables (partitions kept).
func emptyPipelineTables(ctx context.Context, db *sqlx.DB) error {
	return release(ctx, db, append(phaseRows, "kafka_offsets")...)
}
