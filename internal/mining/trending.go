package mining

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// TrendingRankSQL ranks one day's items per city (and over all cities,
// city ""), keeping the top N. Its placeholders: day, event type, day, event
// type, N. The benchmark runs the same ranking over a whole window as one
// statement to measure the job against it.
const TrendingRankSQL = `SELECT day, city, rn, item_id, users, shares FROM (
  SELECT day, city, item_id, users, shares,
    ROW_NUMBER() OVER (PARTITION BY day, city ORDER BY users DESC, shares DESC, item_id) AS rn
  FROM (
    SELECT event_date AS day, city, item_id, COUNT(DISTINCT user_id) AS users, COUNT(*) AS shares
      FROM events WHERE event_date %[1]s AND type = ? AND city <> '' GROUP BY event_date, city, item_id
    UNION ALL
    SELECT event_date, '', item_id, COUNT(DISTINCT user_id), COUNT(*)
      FROM events WHERE event_date %[1]s AND type = ? GROUP BY event_date, item_id
  ) AS g
) AS r WHERE rn <= ?`

// TrendingDay computes one day's rankings into trending_stage under the
// run's id, replacing whatever an earlier attempt staged for that day.
func TrendingDay(ctx context.Context, db *sqlx.DB, run Run, day time.Time, p Params) (Stats, error) {
	d := day.UTC().Format(dayLayout)
	var st Stats
	tx, err := db.BeginTxx(ctx, readCommitted)
	if err != nil {
		return st, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "DELETE FROM trending_stage WHERE run_id = ? AND day = ?", run.ID, d); err != nil {
		return st, fmt.Errorf("trending %s: clearing stage: %w", d, err)
	}
	q := "INSERT INTO trending_stage (day, city, rank_no, item_id, users, shares, run_id) SELECT *, ? FROM (" +
		fmt.Sprintf(TrendingRankSQL, "= ?") + ") AS ranked"
	res, err := tx.ExecContext(ctx, q, run.ID, d, p.EventType, d, p.EventType, p.TopN)
	if err != nil {
		return st, fmt.Errorf("trending %s: %w", d, err)
	}
	st.RowsOut, _ = res.RowsAffected()
	if err := tx.GetContext(ctx, &st.RowsIn, "SELECT COUNT(*) FROM events WHERE event_date = ? AND type = ?", d, p.EventType); err != nil {
		return st, fmt.Errorf("trending %s: counting events: %w", d, err)
	}
	return st, tx.Commit()
}
