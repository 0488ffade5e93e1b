package tests

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/internal/loadgen"
	"github.com/sluicedata/sluice/workflows"
)

// TestReconcileFindsAndRepairsDrift: after a normal stream the recomputed
// window matches the live aggregates exactly; injected drift (a count off,
// a bucket missing, a bucket invented) is reported and repaired.
func TestReconcileFindsAndRepairsDrift(t *testing.T) {
	cfg, db, _ := newStackConfig(t, false)
	s := startStack(t, cfg)
	defer stopStack(t, s)
	ctx := context.Background()

	lg := loadgen.DefaultConfig()
	lg.Count, lg.DuplicateRatio, lg.BadRatio, lg.Seed, lg.Spread, lg.RunID = 5000, 0.05, 0.01, 61, 30*time.Minute, "recon"
	if _, err := loadgen.Run(ctx, lg, &loadgen.HTTPSink{URL: s.Collector + "/v1/events", Client: &http.Client{Timeout: 30 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, db, cfg.Topic, 60*time.Second)
	end := time.Now().UTC().Add(-3 * time.Minute).Truncate(time.Minute)
	in := workflows.ReconcileInput{From: end.Add(-2 * time.Hour).Format(time.RFC3339), To: end.Format(time.RFC3339)}
	reconcile := func(repair bool) workflows.ReconcileResult {
		in.Repair = repair
		run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.DefaultTaskQueue}, workflows.ReconcileName, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.ReconcileResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("reconcile: %v", err)
		}
		return res
	}
	clean := reconcile(false)
	buckets := 0
	for _, d := range clean.Days {
		buckets += d.LiveBuckets
	}
	if clean.Differences != 0 || buckets == 0 {
		t.Fatalf("after a normal stream: %d differences over %d buckets, want 0 over some", clean.Differences, buckets)
	}

	// Drift: one count off by 5, one bucket deleted, one invented.
	var minute time.Time
	if err := db.Get(&minute, "SELECT minute_start FROM item_counts_minute WHERE minute_start < ? ORDER BY minute_start DESC LIMIT 1", end); err != nil {
		t.Fatal(err)
	}
	mustExec := func(q string, args ...any) {
		t.Helper()
		if r, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		} else if n, _ := r.RowsAffected(); n != 1 {
			t.Fatalf("%s changed %d rows", q, n)
		}
	}
	mustExec("UPDATE item_counts_minute SET cnt = cnt + 5 WHERE minute_start = ? ORDER BY item_id LIMIT 1", minute)
	mustExec("DELETE FROM item_counts_minute WHERE minute_start = ? ORDER BY item_id DESC LIMIT 1", minute)
	mustExec("INSERT INTO item_counts_minute (event_date, minute_start, type, item_id, channel, city, cnt, updated_at) VALUES (?, ?, 'share', 'ghost', 'qq', 'x', 7, NOW())",
		minute.Format("2006-01-02"), minute)

	found := reconcile(false)
	if found.Differences != 3 || found.Repaired != 0 || len(found.Drifts) != 3 {
		t.Fatalf("with drift: %+v, want 3 differences reported, none repaired", found)
	}
	repaired := reconcile(true)
	if repaired.Repaired != 3 {
		t.Fatalf("repair: %+v", repaired)
	}
	if again := reconcile(false); again.Differences != 0 {
		t.Fatalf("after repair: %d differences", again.Differences)
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM item_counts_minute WHERE item_id = 'ghost'"); n != 0 {
		t.Fatalf("invented bucket still there")
	}
}
