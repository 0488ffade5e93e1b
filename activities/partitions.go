package activities

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/sluicedata/sluice/internal/store"
)

// PartitionMaintenanceInput configures one partition maintenance run.
type PartitionMaintenanceInput struct {
	// Date is the day to maintain for, YYYY-MM-DD (default: today, UTC).
	Date string `json:"date,omitempty"`
	// DaysAhead of daily partitions to keep ready (default 7).
	DaysAhead int `json:"days_ahead,omitempty"`
	// RetentionDays per table; a table left out keeps its default
	// (events 90, item_counts_minute 400, dead_letters 30); 0 keeps forever.
	RetentionDays map[string]int `json:"retention_days,omitempty"`
}

// Validate names the first wrong field.
func (in PartitionMaintenanceInput) Validate() error {
	if _, err := time.Parse("2006-01-02", in.Date); err != nil {
		return fmt.Errorf("date: must be YYYY-MM-DD, got %q", in.Date)
	}
	if in.DaysAhead < 1 || in.DaysAhead > 366 {
		return fmt.Errorf("days_ahead: must be 1-366, got %d", in.DaysAhead)
	}
	known := map[string]bool{}
	for _, t := range store.PartitionedTables {
		known[t.Table] = true
	}
	// Sorted, so the same input always reports the same error (this runs in
	// workflow code too).
	tables := make([]string, 0, len(in.RetentionDays))
	//workflowcheck:ignore only collects the keys, sorted below
	for table := range in.RetentionDays {
		tables = append(tables, table)
	}
	sort.Strings(tables)
	for _, table := range tables {
		days := in.RetentionDays[table]
		if !known[table] {
			return fmt.Errorf("retention_days: unknown table %q", table)
		}
		if days != 0 && days < 2 {
			return fmt.Errorf("retention_days.%s: must be 0 (forever) or at least 2, got %d", table, days)
		}
	}
	return nil
}

// MaintainPartitions adds daily partitions ahead and drops those past
// retention, table by table (see store.MaintainPartitions). Safe while
// ingestion runs, and when run twice or concurrently.
func (a *Activities) MaintainPartitions(ctx context.Context, in PartitionMaintenanceInput) ([]store.TableMaintenance, error) {
	if err := in.Validate(); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", err)
	}
	day, _ := time.Parse("2006-01-02", in.Date)
	rep, err := store.MaintainPartitions(ctx, a.db, day, in.DaysAhead, in.RetentionDays)
	if err != nil {
		return rep, err
	}
	for _, m := range rep {
		a.logger.Info("partition maintenance", "table", m.Table, "added", m.Added, "dropped", m.Dropped, "daily_partitions", m.Kept)
	}
	return rep, nil
}
