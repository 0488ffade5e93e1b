package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicedata/sluice/internal/cli"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/internal/schedules"
	"github.com/sluicedata/sluice/workers"
	"github.com/sluicedata/sluice/workflows"
)

const scheduleUsage = `usage: sluice schedule <list|create|trigger|pause|unpause|delete|backfill> [flags]

  list      every schedule with its workflow, spec, state and next run
  create    a schedule: --id, --workflow, --input JSON, --cron '15 0 * * *' or --every 1h
            (--defaults creates Sluice's default schedules)
  trigger   run a schedule's action now: --id
  pause     --id [--note]      unpause --id [--note]      delete --id
  backfill  run the actions a schedule would have run between --from and --to (RFC 3339)`

func cmdSchedule(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		fmt.Fprintln(out, scheduleUsage)
		return errors.New("schedule: want a subcommand")
	}
	sub, rest := args[0], args[1:]
	fs := cli.NewFlagSet("schedule "+sub, scheduleUsage)
	addr := fs.String("temporal-address", "127.0.0.1:7233", "Temporal frontend host:port")
	namespace := fs.String("namespace", "default", "Temporal namespace")
	taskQueue := fs.String("task-queue", workflows.DefaultTaskQueue, "task queue of the started workflows")
	id := fs.String("id", "", "schedule id")
	note := fs.String("note", "", "note recorded with pause/unpause/create")
	wf := fs.String("workflow", "", "workflow type to start (create)")
	input := fs.String("input", "{}", "workflow input as JSON (create)")
	cron := fs.String("cron", "", "cron spec, UTC (create)")
	every := fs.Duration("every", 0, "interval instead of --cron (create)")
	overlap := fs.String("overlap", "skip", "overlap policy: skip|buffer_one|buffer_all|cancel_other|terminate_other|allow_all (create)")
	catchup := fs.Duration("catchup", 24*time.Hour, "how late a missed run may still start (create)")
	defaults := fs.String("defaults", "false", "create Sluice's default schedules (create)")
	from := fs.String("from", "", "backfill start, RFC 3339")
	to := fs.String("to", "", "backfill end, RFC 3339")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	c, err := workers.DialTemporal(ctx, *addr, *namespace, "sluice-cli", log)
	if err != nil {
		return err
	}
	defer c.Close()
	sc := c.ScheduleClient()
	needID := func() error {
		if *id == "" {
			return fmt.Errorf("schedule %s: --id is required", sub)
		}
		return nil
	}
	switch sub {
	case "list":
		it, err := sc.List(ctx, client.ScheduleListOptions{})
		if err != nil {
			return fmt.Errorf("listing schedules: %w", err)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tWORKFLOW\tSPEC\tPAUSED\tNEXT RUN\tRECENT RUNS")
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return fmt.Errorf("listing schedules: %w", err)
			}
			spec := ""
			if e.Spec != nil {
				spec = strings.Join(e.Spec.CronExpressions, " ")
				for _, iv := range e.Spec.Intervals {
					spec += " every " + iv.Every.String()
				}
			}
			next := ""
			if len(e.NextActionTimes) > 0 {
				next = e.NextActionTimes[0].UTC().Format(time.RFC3339)
			}
			wfType := ""
			if e.WorkflowType.Name != "" {
				wfType = e.WorkflowType.Name
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%d\n", e.ID, wfType, strings.TrimSpace(spec), e.Paused, next, len(e.RecentActions))
		}
		return tw.Flush()
	case "create":
		if *defaults == "true" {
			created, err := schedules.Ensure(ctx, c, *taskQueue, schedules.Defaults())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "created %v (existing ones left alone)\n", created)
			return nil
		}
		if err := needID(); err != nil {
			return err
		}
		if *wf == "" || (*cron == "" && *every == 0) {
			return errors.New("schedule create: --workflow and --cron or --every are required")
		}
		var in any
		if err := json.Unmarshal([]byte(*input), &in); err != nil {
			return fmt.Errorf("schedule create: --input: %w", err)
		}
		pol, ok := enumspb.ScheduleOverlapPolicy_value["SCHEDULE_OVERLAP_POLICY_"+strings.ToUpper(*overlap)]
		if !ok {
			return fmt.Errorf("schedule create: --overlap: unknown policy %q", *overlap)
		}
		d := schedules.Def{ID: *id, Cron: *cron, Workflow: *wf, Input: in, Overlap: enumspb.ScheduleOverlapPolicy(pol), CatchupWindow: *catchup, Note: *note}
		opts := d.Options(*taskQueue)
		if *every > 0 {
			opts.Spec = client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: *every}}}
		}
		if _, err := sc.Create(ctx, opts); err != nil {
			return fmt.Errorf("creating schedule %s: %w", *id, err)
		}
		fmt.Fprintf(out, "created schedule %s\n", *id)
		return nil
	case "trigger", "pause", "unpause", "delete", "backfill":
		if err := needID(); err != nil {
			return err
		}
		h := sc.GetHandle(ctx, *id)
		switch sub {
		case "trigger":
			err = h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL})
		case "pause":
			err = h.Pause(ctx, client.SchedulePauseOptions{Note: *note})
		case "unpause":
			err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: *note})
		case "delete":
			err = h.Delete(ctx)
		case "backfill":
			start, e1 := time.Parse(time.RFC3339, *from)
			end, e2 := time.Parse(time.RFC3339, *to)
			if e1 != nil || e2 != nil || !end.After(start) {
				return errors.New("schedule backfill: --from and --to must be RFC 3339 times, --to after --from")
			}
			err = h.Backfill(ctx, client.ScheduleBackfillOptions{Backfill: []client.ScheduleBackfill{{
				Start: start, End: end, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL}}})
		}
		if err != nil {
			return fmt.Errorf("schedule %s %s: %w", sub, *id, err)
		}
		fmt.Fprintf(out, "schedule %s: %s done\n", *id, sub)
		return nil
	default:
		fmt.Fprintln(out, scheduleUsage)
		return fmt.Errorf("schedule: unknown subcommand %q", sub)
	}
}
