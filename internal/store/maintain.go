package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// DefaultRetentionDays is how long each partitioned table keeps its days.
var DefaultRetentionDays = map[string]int{
	"events":             90,
	"item_counts_minute": 400,
	"dead_letters":       30,
}

// TableMaintenance reports what maintenance did to one table.
type TableMaintenance struct {
	Table   string   `json:"table"`
	Added   []string `json:"added"`
	Dropped []string `json:"dropped"`
	// Kept is the number of daily partitions after maintenance.
	Kept int `json:"kept"`
}

// DropDailyPartitionsBefore drops the table's daily partitions holding only
// days before cutoff (UTC date). The catch-all pmax and the newest daily
// partition are never dropped. Concurrent callers are serialised with the
// same advisory lock as EnsureDailyPartitions; DDL waits at most a few
// seconds for metadata locks and is retried, so ingestion is never stalled.
func DropDailyPartitionsBefore(ctx context.Context, db *sqlx.DB, table string, cutoff time.Time) ([]string, error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening connection for partitions of %s: %w", table, err)
	}
	defer conn.Close()
	lock := "sluice.partitions." + table
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 30)", lock).Scan(&got); err != nil || got.Int64 != 1 {
		if err == nil {
			err = fmt.Errorf("timed out")
		}
		return nil, fmt.Errorf("taking lock %s: %w", lock, err)
	}
	defer func() { _, _ = conn.ExecContext(context.Background(), "SELECT RELEASE_LOCK(?)", lock) }()
	if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = 5"); err != nil {
		return nil, fmt.Errorf("setting lock_wait_timeout: %w", err)
	}
	parts, err := ListPartitions(ctx, conn, table)
	if err != nil {
		return nil, err
	}
	var daily []Partition
	for _, p := range parts {
		if !p.Day.IsZero() {
			daily = append(daily, p)
		}
	}
	sort.Slice(daily, func(i, j int) bool { return daily[i].Day.Before(daily[j].Day) })
	cut := truncDay(cutoff)
	var drop []string
	for i, p := range daily {
		if i == len(daily)-1 || !p.Day.Before(cut) {
			break
		}
		drop = append(drop, p.Name)
	}
	if len(drop) == 0 {
		return nil, nil
	}
	stmt := fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", QuoteIdent(table), strings.Join(drop, ", "))
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if _, lastErr = conn.ExecContext(ctx, stmt); lastErr == nil {
			return drop, nil
		}
		if !IsRetryableConflict(lastErr) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("dropping partitions %s of %s: %w", strings.Join(drop, ","), table, lastErr)
}

// MaintainPartitions keeps every partitioned table's daily partitions from
// yesterday through daysAhead days after now, and drops those older than
// the table's retention (retention[table], else DefaultRetentionDays).
func MaintainPartitions(ctx context.Context, db *sqlx.DB, now time.Time, daysAhead int, retention map[string]int) ([]TableMaintenance, error) {
	var out []TableMaintenance
	for _, t := range PartitionedTables {
		keep, ok := retention[t.Table]
		if !ok {
			keep = DefaultRetentionDays[t.Table]
		}
		m := TableMaintenance{Table: t.Table}
		added, err := EnsureDailyPartitions(ctx, db, t.Table, now.AddDate(0, 0, -1), now.AddDate(0, 0, daysAhead))
		if err != nil {
			return out, err
		}
		m.Added = added
		if keep > 0 {
			dropped, err := DropDailyPartitionsBefore(ctx, db, t.Table, now.AddDate(0, 0, -keep))
			if err != nil {
				return out, err
			}
			m.Dropped = dropped
		}
		parts, err := ListPartitions(ctx, db, t.Table)
		if err != nil {
			return out, err
		}
		m.Kept = len(parts) - 1
		out = append(out, m)
	}
	return out, nil
}
