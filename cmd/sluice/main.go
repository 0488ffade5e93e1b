// Command sluice is Sluice's one binary: `sluice dev` runs the whole platform
// on one machine; the other commands run one part against real
// infrastructure. Configuration comes from flags and SLUICE_* variables,
// OpenTelemetry exporters from the standard OTEL_* variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sluicedata/sluice/internal/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `sluice: collect events, buffer them in Kafka, land them in MySQL exactly once.

usage: sluice <command> [flags]

commands:
  dev       run everything on this machine: Temporal server + Web UI, a
            Kafka-protocol broker, migrations, a worker, the collector, the
            query API and the stream pipeline
  worker    run a Temporal worker with every workflow and activity
  collect   run the HTTP collector (POST /v1/events -> Kafka)
  api       run the query API (GET /v1/trending, recommendations, also-shared)
  migrate   apply MySQL migrations and create daily partitions
  loadgen   generate synthetic restaurant-sharing events
  bench     measure throughput (vs the MySQL ceiling), freshness and worker memory
  schedule  list | create | trigger | pause | unpause | delete | backfill
            manage Temporal Schedules (sluice dev creates the defaults)
  deadletters list | replay
            show parked messages; re-ingest chosen ones after a fix
  version   print the version

Run 'sluice <command> -h' for a command's flags.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	logger := newLogger(stderr)
	slog.SetDefault(logger)

	var fn func(context.Context, []string, io.Writer, *slog.Logger) error
	switch cmd {
	case "dev":
		fn = cmdDev
	case "worker":
		fn = cmdWorker
	case "collect":
		fn = cmdCollect
	case "api":
		fn = cmdAPI
	case "migrate":
		fn = cmdMigrate
	case "loadgen":
		fn = cmdLoadgen
	case "bench":
		fn = cmdBench
	case "deadletters":
		fn = cmdDeadLetters
	case "schedule":
		fn = cmdSchedule
	case "version":
		fmt.Fprintln(stdout, "sluice", version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}

	shutdownTelemetry, err := telemetry.Setup(ctx, "sluice-"+cmd, version)
	if err != nil {
		return fmt.Errorf("setting up telemetry: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := shutdownTelemetry(sctx); err != nil {
			logger.Warn("flushing telemetry", "err", err)
		}
	}()
	return fn(ctx, rest, stdout, logger)
}

func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("SLUICE_LOG_LEVEL")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
