package bench

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// statusCounters are the MySQL global status counters whose change over a
// phase says what work the server did for it: statements and transactions
// (Com_), and row operations (Handler_; on a partitioned table the
// partitioning handler and the partition both count, so a row inserted
// into events is 2 writes).
var statusCounters = []string{
	"Com_commit", "Com_load", "Com_insert", "Com_update", "Com_select",
	"Handler_write", "Handler_update", "Handler_read_key",
}

// globalStatus reads the named global status counters (constants, not
// user input) in one statement, nil when the server cannot tell.
func globalStatus(ctx context.Context, db *sqlx.DB, names ...string) map[string]int64 {
	q := "SHOW GLOBAL STATUS WHERE Variable_name IN ('" + strings.Join(names, "','") + "')"
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return nil
		}
		out[name] = v
	}
	if rows.Err() != nil {
		return nil
	}
	return out
}

// statusLine renders the counters' changes over a phase of events rows:
// statements as counts, row operations also per row.
func statusLine(d map[string]int64, events int) string {
	if d == nil {
		return "MySQL did: (status not readable)"
	}
	var parts []string
	for _, k := range statusCounters {
		v := d[k]
		switch {
		case v == 0:
		case strings.HasPrefix(k, "Handler_"):
			parts = append(parts, fmt.Sprintf("%s %.3f/row", k, float64(v)/float64(max(events, 1))))
		default:
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
	}
	return "MySQL did: " + strings.Join(parts, ", ")
}
