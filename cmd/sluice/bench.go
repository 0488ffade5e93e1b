package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/sluicedata/sluice/internal/cli"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/bench"
)

func cmdBench(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	d := bench.DefaultConfig()
	fs := cli.NewFlagSet("bench", "Measure, on this machine and the same generated events: (a) the MySQL ceiling (best of multi-row INSERT and\n"+
		"LOAD DATA LOCAL INFILE into a copy of events), (b) Sluice end to end (StreamIngestWorkflow + a `sluice worker`\n"+
		"process), (c) the same consume loop without Temporal, (d) freshness from POST to item_counts_minute at half of (b),\n"+
		"(e) the worker's peak RSS, (g) the mining jobs on a generated dataset next to one SQL statement ranking the same, (h) the query API\n"+
		"under concurrent load. The last line printed is one JSON object with every figure.")
	events := fs.Int("events", d.Events, "events pre-produced to the topic and written in each phase")
	dsn := fs.String("mysql-dsn", "", "MySQL server to use (its database name, if any, prefixes the bench's databases, which are dropped after); empty starts a private MariaDB sized for benchmarks")
	skipFresh := fs.Bool("skip-freshness", false, "skip the freshness phase (d)")
	skipScale := fs.Bool("skip-scale", false, "skip the scale-out phase (b2): two worker processes, parallelism 2")
	skipCeiling := fs.Bool("skip-ceiling", false, "skip the ceiling phase (a)")
	skipBare := fs.Bool("skip-bare", false, "skip the bare-loop phase (c)")
	skipE2E := fs.Bool("skip-e2e", false, "skip the end-to-end phase (b), and with it (d) and (e)")
	skipMining := fs.Bool("skip-mining", false, "skip (g) the mining jobs on a generated dataset and (h) the query API under load")
	miningEvents := fs.Int("mining-events", d.MiningEvents, "events of the mining dataset (g), loaded straight into MySQL")
	miningUsers := fs.Int("mining-users", d.MiningUsers, "users of the mining dataset")
	miningItems := fs.Int("mining-items", d.MiningItems, "Zipf-popular items of the mining dataset")
	miningDays := fs.Int("mining-days", d.MiningDays, "days the mining dataset spans, ending today")
	apiClients := fs.Int("api-clients", d.APIClients, "concurrent clients of the query API phase (h)")
	apiSeconds := fs.Int("api-seconds", d.APISeconds, "seconds the query API phase measures (after 2 s of warm-up)")
	jsonOnly := fs.Bool("json-only", false, "print only the JSON line")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process during the bare loop (c) to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile of this process 3 s into the bare loop (c) to this file")
	workerProfile := fs.String("worker-cpuprofile", "", "write a CPU profile of the worker process over the first 5 s of (b) to this file (and its allocations to FILE.allocs)")
	e2eProfile := fs.String("e2e-cpuprofile", "", "write a CPU profile of this process (broker, Temporal server) during the first round of (b) to this file")
	freshProfile := fs.String("fresh-cpuprofile", "", "write a CPU profile of this process (collector, broker, Temporal server) while (d) posts to this file")
	freshWorkerProfile := fs.String("fresh-worker-cpuprofile", "", "write a CPU profile of the worker over 10 s of (d), from 5 s in, to this file")
	batches := fs.String("ceiling-batches", joinInts(d.CeilingBatches), "comma-separated batch sizes of the ceiling sweep")
	writers := fs.String("ceiling-writers", joinInts(d.CeilingWriters), "comma-separated writer counts of the ceiling sweep")
	sample := fs.Int("ceiling-sample", d.CeilingSampleRows, "rows written at each ceiling sweep point (the best point then writes all events)")
	freshSecs := fs.Int("freshness-seconds", d.FreshnessSeconds, "seconds of posting in the freshness phase")
	freshRate := fs.Float64("freshness-rate", 0, "events/s posted in the freshness phase (0: half of (b)'s rate); for comparing workers at one load")
	skipWarm := fs.Bool("skip-warmup", false, "skip the unmeasured run of (c) and (b) before round 1")
	rounds := fs.Int("rounds", d.Rounds, "times (a) at its best point, (b) and (c) run back to back, (b) in the middle; the report gives their medians")
	batchSize := fs.Int("batch-size", 0, "consumer batch_size for (b) and (c) (0: the pipeline default)")
	consumeWriters := fs.Int("writers", 0, "consumer writers for (b) and (c) (0: the pipeline default)")
	flushMS := fs.Int("flush-ms", 0, "consumer flush_ms for (b) and (c) (0: the pipeline default)")
	keep := fs.Bool("keep", false, "keep the data directory and databases")
	workerBin := fs.String("worker-binary", "", "binary run as `<binary> worker --temporal-address ...` in (b) and (g) (empty: sluice-worker next to this binary, else this binary)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := d
	cfg.Events, cfg.MySQLDSN, cfg.CPUProfile, cfg.KeepData = *events, *dsn, *cpuProfile, *keep
	cfg.MemProfile = *memProfile
	cfg.WorkerCPUProfile = *workerProfile
	cfg.FreshCPUProfile, cfg.FreshWorkerCPUProfile = *freshProfile, *freshWorkerProfile
	cfg.E2ECPUProfile = *e2eProfile
	cfg.SkipFreshness, cfg.SkipCeiling, cfg.SkipBare, cfg.SkipE2E = *skipFresh, *skipCeiling, *skipBare, *skipE2E
	cfg.SkipScale, cfg.SkipMining = *skipScale, *skipMining
	cfg.MiningEvents, cfg.MiningUsers, cfg.MiningItems, cfg.MiningDays = *miningEvents, *miningUsers, *miningItems, *miningDays
	cfg.APIClients, cfg.APISeconds = *apiClients, *apiSeconds
	cfg.CeilingSampleRows, cfg.FreshnessSeconds, cfg.FreshnessRate = *sample, *freshSecs, *freshRate
	cfg.Rounds, cfg.SkipWarmUp = *rounds, *skipWarm
	cfg.Consume = activities.ConsumeInput{BatchSize: *batchSize, Writers: *consumeWriters, FlushMillis: *flushMS}
	var err error
	if cfg.CeilingBatches, err = parseInts(*batches); err != nil {
		return fmt.Errorf("--ceiling-batches: %w", err)
	}
	if cfg.CeilingWriters, err = parseInts(*writers); err != nil {
		return fmt.Errorf("--ceiling-writers: %w", err)
	}
	cfg.WorkerBinary = *workerBin
	if (!cfg.SkipE2E || !cfg.SkipMining) && cfg.WorkerBinary == "" {
		// The deployed worker binary (make build puts it next to sluice);
		// this binary, which also links the embedded server, otherwise.
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the sluice binary to run as the worker: %w", err)
		}
		cfg.WorkerBinary = self
		if lean := filepath.Join(filepath.Dir(self), "sluice-worker"); fileExists(lean) {
			cfg.WorkerBinary = lean
		}
	}
	// The stack's own logs stay quiet unless SLUICE_LOG_LEVEL asks.
	cfg.Logger = log
	if os.Getenv("SLUICE_LOG_LEVEL") == "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if !*jsonOnly {
		cfg.Out = out
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(line))
	return err
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range cli.SplitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
