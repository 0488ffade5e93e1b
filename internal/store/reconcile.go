package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/aggregate"
	"github.com/sluicedata/sluice/schemas"
)

// Drift is one minute bucket whose live count differs from the count
// recomputed from raw events.
type Drift struct {
	Key        aggregate.MinuteKey `json:"key"`
	Live       int64               `json:"live"`
	Recomputed int64               `json:"recomputed"`
}

// Recompute counts the events that occurred in [from, to) with the same
// aggregation the stream uses (aggregate.Counts.Add), reading the raw rows.
func Recompute(ctx context.Context, db sqlx.QueryerContext, from, to time.Time) (aggregate.Counts, error) {
	from, to = from.UTC(), to.UTC()
	rows, err := db.QueryxContext(ctx, `SELECT event_id, type, occurred_at, user_id, item_id, channel, city FROM events
WHERE event_date BETWEEN ? AND ? AND occurred_at >= ? AND occurred_at < ?`,
		from.Format(dayLayout), to.Format(dayLayout), from, to)
	if err != nil {
		return nil, fmt.Errorf("reading events to recompute: %w", err)
	}
	defer rows.Close()
	out := aggregate.Counts{}
	var e schemas.Event
	for rows.Next() {
		if err := rows.Scan(&e.EventID, &e.Type, &e.OccurredAt, &e.UserID, &e.ItemID, &e.Channel, &e.City); err != nil {
			return nil, fmt.Errorf("reading events to recompute: %w", err)
		}
		out.Add(&e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading events to recompute: %w", err)
	}
	return out, nil
}

// LiveCounts reads item_counts_minute for the minutes in [from, to).
func LiveCounts(ctx context.Context, db sqlx.QueryerContext, from, to time.Time) (aggregate.Counts, error) {
	from, to = from.UTC(), to.UTC()
	rows, err := db.QueryxContext(ctx, `SELECT minute_start, type, item_id, channel, city, cnt FROM item_counts_minute
WHERE event_date BETWEEN ? AND ? AND minute_start >= ? AND minute_start < ?`,
		from.Format(dayLayout), to.Format(dayLayout), from, to)
	if err != nil {
		return nil, fmt.Errorf("reading live counts: %w", err)
	}
	defer rows.Close()
	out := aggregate.Counts{}
	for rows.Next() {
		var k aggregate.MinuteKey
		var n int64
		if err := rows.Scan(&k.Minute, &k.Type, &k.ItemID, &k.Channel, &k.City, &n); err != nil {
			return nil, fmt.Errorf("reading live counts: %w", err)
		}
		k.Minute = k.Minute.UTC()
		out[k] += n
	}
	return out, rows.Err()
}

// Diff lists every bucket where live and recomputed differ, in key order.
func Diff(live, recomputed aggregate.Counts) []Drift {
	all := aggregate.Counts{}
	for k := range live {
		all[k] = 0
	}
	for k := range recomputed {
		all[k] = 0
	}
	var out []Drift
	for _, k := range all.Keys() {
		if live[k] != recomputed[k] {
			out = append(out, Drift{Key: k, Live: live[k], Recomputed: recomputed[k]})
		}
	}
	return out
}
