// Command sluice is Sluice's one binary: `sluice dev` runs the whole platform
// on one machine; the other commands run one part against real
// infrastructure. Configuration comes from flags and SLUICE_* variables,
// OpenTelemetry exporters from the standard OTEL_* variables.
package main

import "github.com/sluicedata/sluice/internal/cli"

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
	cli.Program{Name: "sluice", Version: version, Usage: usage, Commands: map[string]cli.Command{
		"dev":         cmdDev,
		"worker":      cli.Worker,
		"collect":     cmdCollect,
		"api":         cmdAPI,
		"migrate":     cmdMigrate,
		"loadgen":     cmdLoadgen,
		"bench":       cmdBench,
		"deadletters": cmdDeadLetters,
		"schedule":    cmdSchedule,
	}}.Main()
}
