package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/loadgen"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
	"github.com/sluicedata/sluice/workflows"
)

// TestMySQLDownBackpressure stops a private MariaDB for 30 s while a
// million events pile up in Kafka: the worker (a separate process) stops
// fetching, its memory stays bounded, the status query reports the lag and
// the error, and once MySQL is back everything lands exactly once.
func TestMySQLDownBackpressure(t *testing.T) {
	mysqld := mysqltest.StartPrivate(t)
	dsn := mysqld.NewDB(t, "sluice")
	cfg, _, _ := newStackConfig(t, false)
	cfg.MySQLDSN = dsn
	cfg.NoWorker, cfg.NoPipeline = true, true
	s := startStack(t, cfg)
	defer stopStack(t, s)

	w := startWorker(t, s, dsn, "worker-bp")
	in := workflows.StreamIngestInput{ConsumeInput: activities.ConsumeInput{Pipeline: "default", Topic: cfg.Topic, ProgressSeconds: 1}}
	startPipeline(t, s, in)

	ctx := t.Context()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	lg := loadgen.DefaultConfig()
	lg.Count, lg.DuplicateRatio, lg.BadRatio, lg.Seed, lg.BatchSize, lg.RunID = 20000, 0.05, 0.01, 51, 2000, "bp1"
	warm := produce(t, s, cfg.Topic, lg)
	waitCaughtUp(t, s, db, cfg.Topic, 120*time.Second)

	// MySQL goes away; a million events arrive.
	mysqld.Stop()
	down := time.Now()
	var peak float64
	sample := func() {
		if r := w.rssMB(); r > peak {
			peak = r
		}
	}
	lg2 := lg
	lg2.Count, lg2.Seed, lg2.RunID = 1_000_000, 52, "bp2"
	lagged := make(chan loadgen.Stats, 1)
	go func() { lagged <- produce(t, s, cfg.Topic, lg2) }()
	var stats2 loadgen.Stats
	for done := false; !done; {
		select {
		case stats2 = <-lagged:
			done = true
		case <-time.After(500 * time.Millisecond):
			sample()
		}
	}
	for time.Since(down) < 30*time.Second {
		sample()
		time.Sleep(500 * time.Millisecond)
	}
	st := streamStatus(t, s)
	t.Logf("MySQL down %s: status lag %d, live %d, last error %q; worker peak RSS %.0f MB",
		time.Since(down).Round(time.Second), st.Lag, len(st.Live), liveError(st), peak)
	if st.Lag < 900_000 {
		t.Errorf("status query lag = %d while ~1,000,000 events wait", st.Lag)
	}
	if e := liveError(st); !strings.Contains(strings.ToLower(e), "connect") && !strings.Contains(e, "bad connection") && !strings.Contains(e, "invalid connection") {
		t.Errorf("status should say why nothing is committed; last error %q", e)
	}
	if peak > 300 {
		t.Errorf("worker peak RSS %.0f MB with a million events of lag, want < 300", peak)
	}

	// MySQL is back: nothing lost, nothing doubled.
	mysqld.Start()
	back := time.Now()
	waitCaughtUpSampling(t, s, db, cfg.Topic, 400*time.Second, sample)
	t.Logf("caught up %s after MySQL came back (%.0f events/s); worker peak RSS %.0f MB", time.Since(back).Round(time.Second),
		float64(stats2.Accepted)/time.Since(back).Seconds(), peak)
	valid := int64(warm.Valid + stats2.Valid)
	if got := queryInt(t, db, "SELECT COUNT(*) FROM events"); got != valid {
		t.Errorf("events rows = %d, want %d", got, valid)
	}
	if got := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute"); got != valid {
		t.Errorf("sum of counts = %d, want %d", got, valid)
	}
	if got := queryInt(t, db, "SELECT COUNT(*) FROM dead_letters"); got != int64(warm.Invalid+stats2.Invalid) {
		t.Errorf("dead letters = %d, want %d", got, warm.Invalid+stats2.Invalid)
	}
	if peak > 300 {
		t.Errorf("worker peak RSS %.0f MB, want < 300", peak)
	}
}

func liveError(st workflows.StreamStatus) string {
	for _, l := range st.Live {
		if l.LastError != "" {
			return l.LastError
		}
	}
	return ""
}
