package store

import (
	"context"
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
	"trending_daily":     400,
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
	var dropped []string
	err := withPartitionLock(ctx, db, table, func(conn *sqlx.Conn) error {
		parts, err := ListPartitions(ctx, conn, table)
		if err != nil {
			return err
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
			return nil
		}
		stmt := fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", QuoteIdent(table), strings.Join(drop, ", "))
		if err := execDDL(ctx, conn, stmt); err != nil {
			return fmt.Errorf("dropping partitions %s of %s: %w", strings.Join(drop, ","), table, err)
		}
		dropped = drop
		return nil
	})
	return dropped, err
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
