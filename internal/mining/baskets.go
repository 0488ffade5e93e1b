package mining

import (
	"context"
	"fmt"
	"hash/crc32"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"
)

// ShardOf is the user shard of userID among shards: CRC32 (IEEE) of its
// UTF-8 bytes mod shards, the same as MySQL's CRC32(user_id) % shards.
func ShardOf(userID string, shards int) int {
	return int(crc32.ChecksumIEEE([]byte(userID)) % uint32(shards))
}

// basket is what one user shared in the window.
type basket struct {
	items  []int32 // dictionary indexes, sorted, distinct after finish
	city   string  // city of the latest share
	latest time.Time
}

// shardBaskets holds one shard's users with an item dictionary local to it.
type shardBaskets struct {
	dict  map[string]int32
	items []string
	users map[string]*basket
	rows  int64
}

func (s *shardBaskets) item(id string) int32 {
	if i, ok := s.dict[id]; ok {
		return i
	}
	i := int32(len(s.items))
	s.dict[id] = i
	s.items = append(s.items, id)
	return i
}

// Progress receives what a piece has done so far in its current phase
// ("rows_read", "rows_written", "co_share_rows_loaded"); activities
// heartbeat it.
type Progress func(phase string, n int64)

// progressEvery is how many rows a scan reads between progress calls.
const progressEvery = 100_000

// scanShard reads the events of one user shard in [from, to] (UTC days) and
// groups them into baskets. progress, when set, is called every
// progressEvery rows with the rows read so far.
func scanShard(ctx context.Context, db sqlx.QueryerContext, from, to time.Time, eventType string, shard, shards int, progress Progress) (*shardBaskets, error) {
	rows, err := db.QueryxContext(ctx, `SELECT user_id, item_id, city, occurred_at FROM events
WHERE event_date BETWEEN ? AND ? AND type = ? AND item_id <> '' AND CRC32(user_id) % ? = ?`,
		from.Format(dayLayout), to.Format(dayLayout), eventType, shards, shard)
	if err != nil {
		return nil, fmt.Errorf("reading shard %d/%d: %w", shard, shards, err)
	}
	defer rows.Close()
	s := &shardBaskets{dict: map[string]int32{}, users: map[string]*basket{}}
	var user, item, city string
	var at time.Time
	for rows.Next() {
		if err := rows.Scan(&user, &item, &city, &at); err != nil {
			return nil, fmt.Errorf("reading shard %d/%d: %w", shard, shards, err)
		}
		b := s.users[user]
		if b == nil {
			b = &basket{}
			s.users[user] = b
		}
		b.items = append(b.items, s.item(item))
		if at.After(b.latest) || (at.Equal(b.latest) && city > b.city) {
			b.latest, b.city = at, city
		}
		s.rows++
		if progress != nil && s.rows%progressEvery == 0 {
			progress("rows_read", s.rows)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading shard %d/%d: %w", shard, shards, err)
	}
	for _, b := range s.users {
		b.items = sortedDistinct(b.items)
	}
	return s, nil
}

func sortedDistinct(v []int32) []int32 {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	out := v[:0]
	for i, x := range v {
		if i == 0 || x != v[i-1] {
			out = append(out, x)
		}
	}
	return out
}
