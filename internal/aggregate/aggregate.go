// Package aggregate defines Sluice's live aggregation once, for both the
// stream path (Go, per batch) and the batch path (SQL over events), so the
// two give the same numbers.
package aggregate

import (
	"time"

	"github.com/sluicedata/sluice/schemas"
)

// MinuteKey identifies one row of item_counts_minute: events per UTC minute,
// type, item, channel and city. Absent optional fields are "".
type MinuteKey struct {
	Minute  time.Time // UTC, truncated to the minute
	Type    string
	ItemID  string
	Channel string
	City    string
}

// KeyOf is the stream-side definition: the minute bucket an event counts in.
func KeyOf(e *schemas.Event) MinuteKey {
	return MinuteKey{Minute: e.Minute(), Type: e.Type, ItemID: e.ItemID, Channel: e.Channel, City: e.City}
}

// Less orders keys by (minute, type, item, channel, city).
func (k MinuteKey) Less(o MinuteKey) bool {
	if !k.Minute.Equal(o.Minute) {
		return k.Minute.Before(o.Minute)
	}
	if k.Type != o.Type {
		return k.Type < o.Type
	}
	if k.ItemID != o.ItemID {
		return k.ItemID < o.ItemID
	}
	if k.Channel != o.Channel {
		return k.Channel < o.Channel
	}
	return k.City < o.City
}

// MinuteSQL is the batch-side definition over the events table: the same
// buckets as KeyOf, computed from stored rows (occurred_at is stored in UTC,
// and event_date is the UTC date, so a minute never straddles two dates).
const MinuteSQL = `SELECT event_date, DATE_FORMAT(occurred_at, '%Y-%m-%d %H:%i:00') AS minute_start,
  type, item_id, channel, city, COUNT(*) AS cnt
FROM events
WHERE event_date BETWEEN ? AND ? AND occurred_at >= ? AND occurred_at < ?
GROUP BY event_date, minute_start, type, item_id, channel, city`
