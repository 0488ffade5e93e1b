package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/sluicedata/sluice/internal/store"
)

// ReconcileWindow is one piece of a reconcile run: [From, To), RFC 3339.
type ReconcileWindow struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Repair    bool   `json:"repair"`
	MaxReport int    `json:"max_report"`
}

// ReconcileReport is what one window showed (and repaired).
type ReconcileReport struct {
	From        string        `json:"from"`
	To          string        `json:"to"`
	LiveBuckets int           `json:"live_buckets"`
	Recomputed  int           `json:"recomputed_buckets"`
	Differences int           `json:"differences"`
	Drifts      []store.Drift `json:"drifts,omitempty"`
	Repaired    int           `json:"repaired"`
}

// Reconcile recomputes a closed window's minute counts from raw events with
// the stream's own aggregation, compares them with item_counts_minute,
// reports every difference (the first MaxReport in detail) and, when asked,
// repairs them.
func (a *Activities) Reconcile(ctx context.Context, w ReconcileWindow) (ReconcileReport, error) {
	from, err1 := time.Parse(time.RFC3339, w.From)
	to, err2 := time.Parse(time.RFC3339, w.To)
	if err1 != nil || err2 != nil || !to.After(from) {
		err := fmt.Errorf("from/to: want RFC 3339 times with to after from, got %q and %q", w.From, w.To)
		return ReconcileReport{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", err)
	}
	rep := ReconcileReport{From: w.From, To: w.To}
	re, err := store.Recompute(ctx, a.db, from, to)
	if err != nil {
		return rep, err
	}
	live, err := store.LiveCounts(ctx, a.db, from, to)
	if err != nil {
		return rep, err
	}
	drifts := store.Diff(live, re)
	rep.LiveBuckets, rep.Recomputed, rep.Differences = len(live), len(re), len(drifts)
	if w.Repair && len(drifts) > 0 {
		// Repair by rebuilding the window's days (BackfillWorkflow's
		// rebuild): a consistent snapshot and additive corrections, so an
		// event that arrives late for this window while we repair is
		// neither lost nor counted twice, as an absolute overwrite would.
		for day := from.UTC().Truncate(24 * time.Hour); day.Before(to); day = day.AddDate(0, 0, 1) {
			res, err := store.RebuildDay(ctx, a.db, day, store.RebuildOptions{})
			if err != nil {
				return rep, err
			}
			rep.Repaired += res.Drifted
		}
	}
	if len(drifts) > w.MaxReport {
		drifts = drifts[:w.MaxReport]
	}
	rep.Drifts = drifts
	if rep.Differences > 0 {
		a.logger.Warn("reconcile found drift", "from", w.From, "to", w.To, "differences", rep.Differences, "repaired", rep.Repaired)
	}
	return rep, nil
}
