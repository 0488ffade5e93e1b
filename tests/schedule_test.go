package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/schedules"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/workflows"
)

// TestDefaultSchedulesAndPartitionMaintenance: sluice dev registers the
// partition-maintenance schedule once (a restart leaves it alone), a
// trigger runs it, and PartitionMaintenanceWorkflow run for a day far ahead
// adds and drops partitions while leaving kept rows alone.
func TestDefaultSchedulesAndPartitionMaintenance(t *testing.T) {
	cfg, db, _ := newStackConfig(t, false)
	s := startStack(t, cfg)
	defer stopStack(t, s)
	ctx := context.Background()

	h := s.Client.ScheduleClient().GetHandle(ctx, "partition-maintenance")
	desc, err := h.Describe(ctx)
	if err != nil {
		t.Fatalf("default schedule missing: %v", err)
	}
	if desc.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP {
		t.Errorf("overlap policy = %v, want skip", desc.Schedule.Policy.Overlap)
	}
	if created, err := schedules.Ensure(ctx, s.Client, workflows.DefaultTaskQueue, schedules.Defaults()); err != nil || len(created) != 0 {
		t.Fatalf("second Ensure created %v (%v), want nothing", created, err)
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := h.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Info.NumActions >= 1 && len(d.Info.RecentActions) > 0 {
			run := s.Client.GetWorkflow(ctx, d.Info.RecentActions[0].StartWorkflowResult.WorkflowID, d.Info.RecentActions[0].StartWorkflowResult.FirstExecutionRunID)
			var res workflows.PartitionMaintenanceResult
			if err := run.Get(ctx, &res); err != nil {
				t.Fatalf("scheduled maintenance failed: %v", err)
			}
			if len(res.Tables) != len(store.PartitionedTables) {
				t.Fatalf("scheduled maintenance report = %+v", res)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("triggered schedule did not run within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A run for a day 40 days ahead with 10 days of retention.
	if _, err := db.Exec("INSERT INTO item_counts_minute (event_date, minute_start, type, item_id, channel, city, cnt, updated_at) VALUES (?, ?, 'share', 'keep', '', '', 3, NOW())",
		time.Now().UTC().AddDate(0, 0, 7).Format("2006-01-02"), time.Now().UTC().AddDate(0, 0, 7).Truncate(time.Minute)); err != nil {
		t.Fatal(err)
	}
	far := time.Now().UTC().AddDate(0, 0, 40).Format("2006-01-02")
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.DefaultTaskQueue}, workflows.PartitionMaintenanceName,
		activities.PartitionMaintenanceInput{Date: far, RetentionDays: map[string]int{"events": 10, "dead_letters": 10, "item_counts_minute": 40}})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.PartitionMaintenanceResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	for _, m := range res.Tables {
		t.Logf("%s: added %d, dropped %d, %d daily partitions", m.Table, len(m.Added), len(m.Dropped), m.Kept)
		if len(m.Added) == 0 {
			t.Errorf("%s: nothing added for a day 40 days ahead", m.Table)
		}
		if m.Table == "events" && len(m.Dropped) == 0 {
			t.Errorf("events: nothing dropped with 10 days of retention 40 days ahead")
		}
	}
	if n := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute WHERE item_id = 'keep'"); n != 3 {
		t.Errorf("row in a kept partition changed: cnt %d, want 3", n)
	}
	// Bad input names the field.
	run, err = s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.DefaultTaskQueue}, workflows.PartitionMaintenanceName,
		activities.PartitionMaintenanceInput{RetentionDays: map[string]int{"evnets": 3}})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "retention_days: unknown table") {
		t.Errorf("bad input error = %v", err)
	}
}
