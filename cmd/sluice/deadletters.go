package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicedata/sluice/internal/cli"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/workers"
	"github.com/sluicedata/sluice/workflows"
)

const deadLettersUsage = `usage: sluice deadletters <list|replay> [flags]

  list     show parked messages (newest first) with their coordinates and reason
  replay   start DeadLetterReplayWorkflow to re-ingest chosen letters after a fix,
           each exactly once, and wait for its result`

func cmdDeadLetters(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		fmt.Fprintln(out, deadLettersUsage)
		return errors.New("deadletters: want list or replay")
	}
	switch args[0] {
	case "list":
		return deadLettersList(ctx, args[1:], out)
	case "replay":
		return deadLettersReplay(ctx, args[1:], out, log)
	default:
		fmt.Fprintln(out, deadLettersUsage)
		return fmt.Errorf("deadletters: unknown subcommand %q", args[0])
	}
}

func deadLettersList(ctx context.Context, args []string, out io.Writer) error {
	fs := cli.NewFlagSet("deadletters list", "List parked messages.")
	dsn := fs.String("mysql-dsn", store.DefaultDSN, "MySQL DSN")
	pipeline := fs.String("pipeline", "", "only this pipeline")
	topic := fs.String("topic", "", "only this topic")
	since := fs.Duration("since", 7*24*time.Hour, "parked within this long")
	limit := fs.Int("limit", 50, "at most this many")
	all := fs.String("include-replayed", "false", "also list letters a replay already ingested (true|false)")
	asJSON := fs.String("json", "false", "print JSON lines, raw bytes included (true|false)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	letters, err := store.ListDeadLetters(ctx, db, *pipeline, *topic, time.Now().UTC().Add(-*since), *all == "true", *limit)
	if err != nil {
		return err
	}
	if *asJSON == "true" {
		enc := json.NewEncoder(out)
		for _, l := range letters {
			if err := enc.Encode(struct {
				store.ParkedLetter
				Raw      string `json:"raw"`
				Replayed bool   `json:"replayed"`
			}{l, string(l.Raw), l.ReplayedAt.Valid}); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARKED\tPIPELINE\tTOPIC\tPARTITION\tOFFSET\tREASON\tRAW")
	for _, l := range letters {
		raw := strings.ToValidUTF8(string(l.Raw), "?")
		if len(raw) > 60 {
			raw = raw[:60] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", l.CreatedAt.Format(time.RFC3339), l.Pipeline, l.Topic, l.Partition, l.Offset, l.Reason, strconv.Quote(raw))
	}
	return tw.Flush()
}

func deadLettersReplay(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs := cli.NewFlagSet("deadletters replay", "Re-ingest chosen dead letters (DeadLetterReplayWorkflow).")
	addr := fs.String("temporal-address", "127.0.0.1:7233", "Temporal frontend host:port")
	namespace := fs.String("namespace", "default", "Temporal namespace")
	taskQueue := fs.String("task-queue", workflows.DefaultTaskQueue, "Temporal task queue")
	pipeline := fs.String("pipeline", "default", "pipeline")
	topic := fs.String("topic", "events", "topic")
	from := fs.String("from", "", "first day parked, YYYY-MM-DD (default 7 days ago)")
	to := fs.String("to", "", "last day parked, YYYY-MM-DD (default today)")
	partition := fs.Int("partition", -1, "only this Kafka partition")
	offsets := fs.String("offsets", "", "only these comma-separated offsets (needs --partition)")
	reason := fs.String("reason-contains", "", "only letters whose reason contains this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	in := activities.ReplayInput{Pipeline: *pipeline, Topic: *topic, From: *from, To: *to, ReasonContains: *reason}
	if *partition >= 0 {
		p := int32(*partition)
		in.Partition = &p
	}
	for _, o := range cli.SplitList(*offsets) {
		n, err := strconv.ParseInt(o, 10, 64)
		if err != nil {
			return fmt.Errorf("--offsets: %q is not an offset", o)
		}
		in.Offsets = append(in.Offsets, n)
	}
	c, err := workers.DialTemporal(ctx, *addr, *namespace, "sluice-cli", log)
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        fmt.Sprintf("deadletter-replay-%s-%d", *pipeline, time.Now().Unix()),
		TaskQueue: *taskQueue,
	}, workflows.DeadLetterReplayName, in)
	if err != nil {
		return fmt.Errorf("starting %s: %w", workflows.DeadLetterReplayName, err)
	}
	fmt.Fprintf(out, "started %s %s; waiting...\n", workflows.DeadLetterReplayName, run.GetID())
	var res activities.ReplayProgress
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	fmt.Fprintf(out, "scanned %d, ingested %d, duplicates %d, still invalid %d\n", res.Scanned, res.Ingested, res.Duplicates, res.StillInvalid)
	return nil
}
