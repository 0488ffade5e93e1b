package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Run partitions: co_shares and recommendations are LIST-partitioned by
// run_id, one partition "r<run_id>" per mining run, so that a run's rows
// are written apart from what readers see and a superseded run disappears
// with one cheap DROP PARTITION.

// RunPartitionName is the partition of a table holding run id's rows.
func RunPartitionName(runID int64) string { return "r" + strconv.FormatInt(runID, 10) }

const errDuplicatePartition = 1517

// AddRunPartition gives table a partition for runID; adding one that exists
// is not an error, so a retried activity can call it again.
func AddRunPartition(ctx context.Context, db *sqlx.DB, table string, runID int64) error {
	if runID <= 0 {
		return fmt.Errorf("adding run partition to %s: run id must be positive, got %d", table, runID)
	}
	return withPartitionLock(ctx, db, table, func(conn *sqlx.Conn) error {
		ids, err := RunPartitions(ctx, conn, table)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if id == runID {
				return nil
			}
		}
		stmt := fmt.Sprintf("ALTER TABLE %s ADD PARTITION (PARTITION %s VALUES IN (%d))", QuoteIdent(table), RunPartitionName(runID), runID)
		if err := execDDL(ctx, conn, stmt); err != nil && mysqlErrNumber(err) != errDuplicatePartition {
			return fmt.Errorf("adding partition %s to %s: %w", RunPartitionName(runID), table, err)
		}
		return nil
	})
}

// RunPartitions lists the run ids that have a partition in table (the
// placeholder partition p0 of run 0 is left out).
func RunPartitions(ctx context.Context, db sqlx.QueryerContext, table string) ([]int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT PARTITION_NAME FROM information_schema.PARTITIONS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL ORDER BY PARTITION_ORDINAL_POSITION`, table)
	if err != nil {
		return nil, fmt.Errorf("listing partitions of %s: %w", table, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("listing partitions of %s: %w", table, err)
		}
		if id, err := strconv.ParseInt(strings.TrimPrefix(name, "r"), 10, 64); err == nil && strings.HasPrefix(name, "r") {
			out = append(out, id)
		}
	}
	return out, rows.Err()
}

// DropRunPartitions drops the partitions of the given runs that exist and
// returns the names it dropped.
func DropRunPartitions(ctx context.Context, db *sqlx.DB, table string, runIDs []int64) ([]string, error) {
	var dropped []string
	err := withPartitionLock(ctx, db, table, func(conn *sqlx.Conn) error {
		have, err := RunPartitions(ctx, conn, table)
		if err != nil {
			return err
		}
		exists := map[int64]bool{}
		for _, id := range have {
			exists[id] = true
		}
		var names []string
		for _, id := range runIDs {
			if exists[id] {
				names = append(names, RunPartitionName(id))
			}
		}
		if len(names) == 0 {
			return nil
		}
		stmt := fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", QuoteIdent(table), strings.Join(names, ", "))
		if err := execDDL(ctx, conn, stmt); err != nil {
			return fmt.Errorf("dropping partitions %s of %s: %w", strings.Join(names, ", "), table, err)
		}
		dropped = names
		return nil
	})
	return dropped, err
}
