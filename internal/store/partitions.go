package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// PartitionedTable names a daily RANGE COLUMNS partitioned table.
type PartitionedTable struct {
	Table  string
	Column string
}

// PartitionedTables lists Sluice's daily-partitioned tables.
var PartitionedTables = []PartitionedTable{
	{Table: "events", Column: "event_date"},
	{Table: "item_counts_minute", Column: "event_date"},
	{Table: "dead_letters", Column: "dl_date"},
	{Table: "trending_daily", Column: "day"},
}

// Partition is one partition of a table as information_schema reports it.
type Partition struct {
	Name string
	// Day is the date the partition holds (zero for the catch-all pmax):
	// partition pYYYYMMDD holds rows with date < YYYY-MM-DD + 1 day.
	Day time.Time
}

const dayLayout = "2006-01-02"

// PartitionName is the name of the partition holding day.
func PartitionName(day time.Time) string { return "p" + day.UTC().Format("20060102") }

// ListPartitions returns the table's partitions in order.
func ListPartitions(ctx context.Context, db sqlx.QueryerContext, table string) ([]Partition, error) {
	rows, err := db.QueryContext(ctx, `SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM information_schema.PARTITIONS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL ORDER BY PARTITION_ORDINAL_POSITION`, table)
	if err != nil {
		return nil, fmt.Errorf("listing partitions of %s: %w", table, err)
	}
	defer rows.Close()
	var out []Partition
	for rows.Next() {
		var name string
		var desc sql.NullString
		if err := rows.Scan(&name, &desc); err != nil {
			return nil, fmt.Errorf("listing partitions of %s: %w", table, err)
		}
		p := Partition{Name: name}
		if d := strings.Trim(desc.String, "'"); desc.Valid && d != "MAXVALUE" {
			upper, err := time.Parse(dayLayout, d)
			if err != nil {
				return nil, fmt.Errorf("listing partitions of %s: partition %s bound %q: %w", table, name, desc.String, err)
			}
			p.Day = upper.AddDate(0, 0, -1)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing partitions of %s: %w", table, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("listing partitions of %s: table is missing or not partitioned (run `sluice migrate`)", table)
	}
	return out, nil
}

// EnsureDailyPartitions makes sure table has a daily partition for every day
// from `from` through `to` (UTC dates), by splitting the empty catch-all
// partition pmax. Days before the first partition are already covered by it.
// It returns the names of the partitions it added. Concurrent callers are
// serialised by an advisory lock, and DDL waits at most a few seconds for
// metadata locks so ingestion is never stalled behind it.
func EnsureDailyPartitions(ctx context.Context, db *sqlx.DB, table string, from, to time.Time) ([]string, error) {
	var added []string
	err := withPartitionLock(ctx, db, table, func(conn *sqlx.Conn) error {
		var err error
		added, err = ensureDaily(ctx, conn, table, from, to)
		return err
	})
	return added, err
}

func ensureDaily(ctx context.Context, conn *sqlx.Conn, table string, from, to time.Time) ([]string, error) {
	parts, err := ListPartitions(ctx, conn, table)
	if err != nil {
		return nil, err
	}
	last := parts[len(parts)-1]
	if last.Name != "pmax" {
		return nil, fmt.Errorf("partitions of %s: last partition is %s, want the catch-all pmax", table, last.Name)
	}
	var newest time.Time
	for _, p := range parts {
		if !p.Day.IsZero() && p.Day.After(newest) {
			newest = p.Day
		}
	}
	// Daily partitions stay contiguous: continue right after the newest one
	// (a gap would make one partition hold many days).
	start := truncDay(from)
	if !newest.IsZero() {
		start = newest.AddDate(0, 0, 1)
	}
	end := truncDay(to)
	if start.After(end) {
		return nil, nil
	}
	var (
		defs  []string
		added []string
	)
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		name := PartitionName(d)
		defs = append(defs, fmt.Sprintf("PARTITION %s VALUES LESS THAN ('%s')", name, d.AddDate(0, 0, 1).Format(dayLayout)))
		added = append(added, name)
	}
	defs = append(defs, "PARTITION pmax VALUES LESS THAN (MAXVALUE)")
	stmt := fmt.Sprintf("ALTER TABLE %s REORGANIZE PARTITION pmax INTO (%s)", QuoteIdent(table), strings.Join(defs, ", "))
	if err := execDDL(ctx, conn, stmt); err != nil {
		return nil, fmt.Errorf("adding partitions %s..%s to %s: %w", added[0], added[len(added)-1], table, err)
	}
	return added, nil
}

// withPartitionLock runs fn on one connection holding the table's partition
// advisory lock, with DDL waiting at most 5 s for metadata locks, so
// concurrent maintenance is serialised and ingestion never queues behind it.
func withPartitionLock(ctx context.Context, db *sqlx.DB, table string, fn func(*sqlx.Conn) error) error {
	conn, err := db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("opening connection for partitions of %s: %w", table, err)
	}
	defer conn.Close()
	lock := "sluice.partitions." + table
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 30)", lock).Scan(&got); err != nil || got.Int64 != 1 {
		if err == nil {
			err = fmt.Errorf("timed out")
		}
		return fmt.Errorf("taking lock %s: %w", lock, err)
	}
	defer func() { _, _ = conn.ExecContext(context.Background(), "SELECT RELEASE_LOCK(?)", lock) }()
	if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = 5"); err != nil {
		return fmt.Errorf("setting lock_wait_timeout: %w", err)
	}
	return fn(conn)
}

// execDDL runs a partition DDL statement, retrying lock timeouts a few times.
func execDDL(ctx context.Context, conn *sqlx.Conn, stmt string) error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if _, lastErr = conn.ExecContext(ctx, stmt); lastErr == nil {
			return nil
		}
		if !IsRetryableConflict(lastErr) {
			return lastErr
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return lastErr
}

// EnsureStreamPartitions gives every partitioned table daily partitions from
// yesterday through `ahead` days after now.
func EnsureStreamPartitions(ctx context.Context, db *sqlx.DB, now time.Time, ahead int) (map[string][]string, error) {
	out := map[string][]string{}
	for _, t := range PartitionedTables {
		added, err := EnsureDailyPartitions(ctx, db, t.Table, now.AddDate(0, 0, -1), now.AddDate(0, 0, ahead))
		if err != nil {
			return out, err
		}
		out[t.Table] = added
	}
	return out, nil
}

func truncDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
