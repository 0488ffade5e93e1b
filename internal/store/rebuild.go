package store

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/aggregate"
	"github.com/sluicedata/sluice/schemas"
)

// Rebuilding one day of item_counts_minute from events while the stream
// keeps writing to that same day.
//
// The stream writer (batch.go) changes item_counts_minute only by adding,
// in the transaction that inserts events, the count of the events that
// transaction actually inserted. So for every bucket of a day, at every
// committed state,
//
//	counts(k) = recomputed-from-events(k) + drift(k)
//
// where drift is whatever went wrong before (a lost write, a manual edit, a
// bug) and stays constant while only the stream writes. RebuildDay measures
// the drift in one consistent snapshot (a REPEATABLE READ read view that
// sees both tables at the same instant, so every stream transaction is
// either wholly in it or wholly out) and then subtracts it, in one short
// transaction, as increments:
//
//	cnt = cnt + (recomputed@S(k) - counts@S(k))
//
// Increments commute with the stream's increments, so whatever the stream
// committed after the snapshot (events for that very day included) is
// neither lost nor counted twice: afterwards counts(k) = recomputed(k)
// exactly, with the writes done since S included. A bucket that no event
// supports at S is deleted if it drops to zero (a later stream increment
// keeps it, rightly).
//
// Why not lock the day's events (SELECT ... FOR SHARE) and rewrite the day
// instead: the locking scan takes its row locks one by one in key order
// while a stream batch inserts its rows in batch order, so a batch that has
// inserted some of the day's rows ahead of the scan and then waits on a gap
// the scan already locked deadlocks with it; under steady ingestion into
// the day that repeats on every attempt, and it stalls every batch touching
// the day for the whole scan. Here the scan takes no locks at all, and the
// only locks are the write transaction's row locks on the drifted buckets,
// taken in the stream's own key order (aggregate.MinuteKey.Less), so it
// cannot deadlock with stream batches any more than they can with each
// other; a deadlock or lock wait timeout (1213/1205) is retried anyway, and
// retrying is safe because the correction is a delta that stays right.
//
// Two rebuilds of the same day must not both apply their correction: a
// per-day MySQL advisory lock (GET_LOCK, held on one connection from before
// the snapshot until after the write commits) serialises them, and the
// second one then measures no drift. The assumption is that nothing but
// stream-style increments changes a day's counts while it is rebuilt; a
// Reconcile repair (absolute values) of the same day at the same moment
// should take the same lock (RebuildLockName).
//
// Memory: the day's buckets are aggregated in Go, one map entry per
// (minute, type, item, channel, city), because events have no index by
// minute and the scan comes in primary key (event_id) order. To keep that
// bounded for big days the key is compacted to 8 bytes (the minute of the
// day and the index of an interned (type, item, channel, city) tuple), and
// the corrections are 8-byte sort keys into that map. Measured: 1M events
// into 768k buckets (nearly one bucket per event, the worst case) hold
// ~40 MB of live heap (~53 bytes per bucket, tuples included) and scan at
// ~550-670k rows/s on 2 busy cores. A day of 10M events with Zipf keys has
// at most a few million buckets (popular tuples repeat every minute), so a
// few hundred MB in the worst case of a from-scratch rebuild. Reading the
// day in slices (by minute or by item range) would bound memory further
// but needs either an index events does not have or one full scan per
// slice; the trade-off chosen is one sequential scan and memory
// proportional to buckets, not events. The snapshot also keeps InnoDB from
// purging undo records for the length of the scan (about 2 s per million
// rows), like any long read, and holds a metadata lock that makes partition
// DDL wait (it gives up after 5 s and retries).

// RebuildProgress is reported while a day is rebuilt.
type RebuildProgress struct {
	Day string `json:"day"`
	// Phase is "waiting" (for another rebuild of the day), "scanning",
	// "writing" or "done".
	Phase          string `json:"phase"`
	RowsScanned    int64  `json:"rows_scanned"`
	BucketsWritten int64  `json:"buckets_written"`
}

// RebuildResult says what rebuilding one day found and changed.
type RebuildResult struct {
	Day string `json:"day"`
	// RowsScanned is the events read in the snapshot.
	RowsScanned int64 `json:"rows_scanned"`
	// Buckets is the number of buckets recomputed from them; LiveBuckets
	// the number item_counts_minute held at the same instant.
	Buckets     int `json:"buckets"`
	LiveBuckets int `json:"live_buckets"`
	// Drifted is the number of buckets whose count was wrong at the
	// snapshot; BucketsWritten those corrected, Deleted the unsupported
	// ones removed.
	Drifted        int   `json:"drifted"`
	BucketsWritten int64 `json:"buckets_written"`
	Deleted        int64 `json:"deleted"`
	// OutsideDay counts events whose event_date disagrees with their
	// occurred_at (the writer never stores such rows); they are skipped.
	OutsideDay int64 `json:"outside_day,omitempty"`
	// Retries counts write transactions rerun after a deadlock or lock
	// wait timeout.
	Retries int `json:"retries,omitempty"`
	// ScanMillis is the snapshot's duration, RowsPerSec its rate; Millis
	// the whole rebuild's, lock wait and write included.
	ScanMillis int64   `json:"scan_ms"`
	Millis     int64   `json:"ms"`
	RowsPerSec float64 `json:"rows_per_sec"`
}

// RebuildOptions tune RebuildDay; the zero value is fine.
type RebuildOptions struct {
	// Progress, when set, is called every few thousand rows and buckets.
	Progress func(RebuildProgress)
	// LockWait bounds the wait for another rebuild of the same day
	// (default 60 s); then RebuildDay fails and can be retried.
	LockWait time.Duration
	// Now stamps updated_at; time.Now when nil.
	Now func() time.Time
	// AfterSnapshot runs between the snapshot and the write transaction
	// (tests use it to commit stream batches in between).
	AfterSnapshot func()
}

// RebuildLockName is the advisory lock serialising rewrites of one day of
// item_counts_minute in database dbName (GET_LOCK is server-wide).
func RebuildLockName(dbName string, day time.Time) string {
	h := sha1.Sum([]byte(dbName))
	return "sluice.counts." + hex.EncodeToString(h[:8]) + "." + day.UTC().Format(dayLayout)
}

// RebuildDay makes item_counts_minute of one UTC day equal to the
// recomputation from events with the stream's own aggregation
// (aggregate.KeyOf), while the stream may keep writing to that day; see
// the comment at the top of this file for why that is safe.
func RebuildDay(ctx context.Context, db *sqlx.DB, day time.Time, opt RebuildOptions) (res RebuildResult, err error) {
	start := time.Now()
	y, m, d := day.UTC().Date()
	day = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	res.Day = day.Format(dayLayout)
	if opt.LockWait <= 0 {
		opt.LockWait = time.Minute
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	prog := RebuildProgress{Day: res.Day, Phase: "waiting"}
	report := func() {
		if opt.Progress != nil {
			opt.Progress(prog)
		}
	}
	report()

	conn, err := db.Connx(ctx)
	if err != nil {
		return res, fmt.Errorf("rebuilding %s: opening a connection: %w", res.Day, err)
	}
	release := func() {}
	defer func() {
		release()
		_ = conn.Close()
	}()

	var dbName sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&dbName); err != nil {
		return res, fmt.Errorf("rebuilding %s: %w", res.Day, err)
	}
	lock := RebuildLockName(dbName.String, day)
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", lock, int(opt.LockWait.Seconds())).Scan(&got); err != nil {
		return res, fmt.Errorf("rebuilding %s: taking lock %s: %w", res.Day, lock, err)
	}
	if got.Int64 != 1 {
		return res, fmt.Errorf("rebuilding %s: another rebuild of the day holds lock %s (waited %s)", res.Day, lock, opt.LockWait)
	}
	release = func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(rctx, "SELECT RELEASE_LOCK(?)", lock); err != nil {
			// Never hand a connection that may still hold the lock back to
			// the pool: discard it (closing it releases the lock).
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}

	// 1. The snapshot: the day's counts and events as of one instant.
	prog.Phase = "scanning"
	report()
	dc := newDayCounts(day)
	scanStart := time.Now()
	if err := dc.snapshot(ctx, conn, &res, func(rows int64) {
		prog.RowsScanned = rows
		report()
	}); err != nil {
		return res, fmt.Errorf("rebuilding %s: %w", res.Day, err)
	}
	prog.RowsScanned = res.RowsScanned
	res.ScanMillis = time.Since(scanStart).Milliseconds()
	if opt.AfterSnapshot != nil {
		opt.AfterSnapshot()
	}

	// 2. The correction, as increments, in one transaction.
	fixes := dc.corrections()
	res.Drifted = len(fixes)
	prog.Phase = "writing"
	report()
	for attempt := 0; ; attempt++ {
		written, deleted, err := dc.apply(ctx, conn, fixes, now().UTC(), func(n int64) {
			prog.BucketsWritten = n
			report()
		})
		if err == nil {
			res.BucketsWritten, res.Deleted = written, deleted
			break
		}
		if !IsRetryableConflict(err) || attempt >= 10 {
			return res, fmt.Errorf("rebuilding %s: %w", res.Day, err)
		}
		res.Retries++
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
	prog.Phase, prog.BucketsWritten = "done", res.BucketsWritten
	report()
	res.Millis = time.Since(start).Milliseconds()
	if res.ScanMillis > 0 {
		res.RowsPerSec = float64(res.RowsScanned) * 1000 / float64(res.ScanMillis)
	}
	return res, nil
}

// bucketTuple is a bucket key without its minute.
type bucketTuple struct{ typ, item, channel, city string }

// dayCounts aggregates one day in compact form: key = tuple index << 11 |
// minute of the day (0-1439), value = recomputed - live at the snapshot.
type dayCounts struct {
	day    time.Time
	strs   map[string]string // interned strings
	ids    map[bucketTuple]uint32
	tuples []bucketTuple
	n      map[uint64]int64
	// byRank maps a tuple's rank in key order to its index (corrections).
	byRank []uint32
	// liveOnly holds the buckets item_counts_minute had that no event
	// supports (candidates for deletion).
	liveOnly map[uint64]struct{}
}

const minuteBits = 11 // 1440 < 2^11

func newDayCounts(day time.Time) *dayCounts {
	return &dayCounts{day: day, strs: map[string]string{}, ids: map[bucketTuple]uint32{}, n: map[uint64]int64{}, liveOnly: map[uint64]struct{}{}}
}

func (dc *dayCounts) intern(b []byte) string {
	if s, ok := dc.strs[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	dc.strs[s] = s
	return s
}

// key compacts a bucket of the day; ok is false for a minute outside it.
func (dc *dayCounts) key(k aggregate.MinuteKey) (uint64, bool) {
	m := k.Minute.Sub(dc.day) / time.Minute
	if m < 0 || m >= 24*60 || !k.Minute.Equal(dc.day.Add(m*time.Minute)) {
		return 0, false
	}
	t := bucketTuple{k.Type, k.ItemID, k.Channel, k.City}
	id, ok := dc.ids[t]
	if !ok {
		id = uint32(len(dc.tuples))
		dc.ids[t] = id
		dc.tuples = append(dc.tuples, t)
	}
	return uint64(id)<<minuteBits | uint64(m), true
}

func (dc *dayCounts) minuteKey(c uint64) aggregate.MinuteKey {
	t := dc.tuples[c>>minuteBits]
	return aggregate.MinuteKey{Minute: dc.day.Add(time.Duration(c&(1<<minuteBits-1)) * time.Minute),
		Type: t.typ, ItemID: t.item, Channel: t.channel, City: t.city}
}

// snapshot reads the day's counts and events in one REPEATABLE READ read
// view, leaving recomputed - live per bucket in dc.n.
func (dc *dayCounts) snapshot(ctx context.Context, conn *sqlx.Conn, res *RebuildResult, progress func(int64)) (err error) {
	if _, err := conn.ExecContext(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return fmt.Errorf("setting isolation: %w", err)
	}
	// The read view is created here, before either table is read.
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return fmt.Errorf("starting the snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	dayStr := dc.day.Format(dayLayout)
	next := dc.day.AddDate(0, 0, 1)

	// Events, through the one aggregation definition (aggregate.KeyOf).
	rows, err := conn.QueryContext(ctx, `SELECT type, occurred_at, item_id, channel, city FROM events WHERE event_date = ?`, dayStr)
	if err != nil {
		return fmt.Errorf("reading events: %w", err)
	}
	var (
		e                        schemas.Event
		typ, item, channel, city sql.RawBytes
		scanned, outside         int64
	)
	for rows.Next() {
		if err := rows.Scan(&typ, &e.OccurredAt, &item, &channel, &city); err != nil {
			rows.Close()
			return fmt.Errorf("reading events: %w", err)
		}
		e.Type, e.ItemID, e.Channel, e.City = dc.intern(typ), dc.intern(item), dc.intern(channel), dc.intern(city)
		if c, ok := dc.key(aggregate.KeyOf(&e)); ok {
			dc.n[c]++
		} else {
			outside++ // event_date disagrees with occurred_at: never written so
		}
		scanned++
		if scanned%50000 == 0 {
			progress(scanned)
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return fmt.Errorf("reading events: %w", err)
	}
	rows.Close()
	res.RowsScanned = scanned
	res.Buckets = len(dc.n)
	progress(scanned)

	// The live counts at the same instant.
	rows, err = conn.QueryContext(ctx, `SELECT minute_start, type, item_id, channel, city, cnt FROM item_counts_minute
WHERE event_date = ? AND minute_start >= ? AND minute_start < ?`, dayStr, dc.day, next)
	if err != nil {
		return fmt.Errorf("reading item_counts_minute: %w", err)
	}
	defer rows.Close()
	var (
		k   aggregate.MinuteKey
		cnt int64
	)
	for rows.Next() {
		if err := rows.Scan(&k.Minute, &typ, &item, &channel, &city, &cnt); err != nil {
			return fmt.Errorf("reading item_counts_minute: %w", err)
		}
		k.Minute = k.Minute.UTC()
		k.Type, k.ItemID, k.Channel, k.City = dc.intern(typ), dc.intern(item), dc.intern(channel), dc.intern(city)
		c, ok := dc.key(k)
		if !ok {
			continue // minute_start not on a minute: not a bucket the stream writes
		}
		if _, supported := dc.n[c]; !supported {
			dc.liveOnly[c] = struct{}{}
		}
		dc.n[c] -= cnt
		res.LiveBuckets++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading item_counts_minute: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("ending the snapshot: %w", err)
	}
	res.OutsideDay = outside
	return nil
}

// corrections lists the drifted buckets as sort keys (minute << 32 |
// tuple rank), in aggregate.MinuteKey.Less order, the order the stream
// writer upserts in: 8 bytes per bucket, so even a day rebuilt from scratch
// (every bucket drifted) costs little beyond its map.
func (dc *dayCounts) corrections() []uint64 {
	n := 0
	for c, v := range dc.n {
		if _, drop := dc.liveOnly[c]; v != 0 || drop {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	idx := make([]uint32, len(dc.tuples))
	for i := range idx {
		idx[i] = uint32(i)
	}
	slices.SortFunc(idx, func(a, b uint32) int {
		ta, tb := dc.tuples[a], dc.tuples[b]
		if c := strings.Compare(ta.typ, tb.typ); c != 0 {
			return c
		}
		if c := strings.Compare(ta.item, tb.item); c != 0 {
			return c
		}
		if c := strings.Compare(ta.channel, tb.channel); c != 0 {
			return c
		}
		return strings.Compare(ta.city, tb.city)
	})
	rank := make([]uint32, len(dc.tuples))
	for r, i := range idx {
		rank[i] = uint32(r)
	}
	dc.byRank = idx
	out := make([]uint64, 0, n)
	for c, v := range dc.n {
		if _, drop := dc.liveOnly[c]; v != 0 || drop {
			out = append(out, (c&(1<<minuteBits-1))<<32|uint64(rank[c>>minuteBits]))
		}
	}
	slices.Sort(out)
	return out
}

// keyOf turns a sort key from corrections back into a map key.
func (dc *dayCounts) keyOf(order uint64) uint64 {
	return uint64(dc.byRank[uint32(order)])<<minuteBits | order>>32
}

// apply adds the corrections in one READ COMMITTED transaction and deletes
// the unsupported buckets that reached zero.
func (dc *dayCounts) apply(ctx context.Context, conn *sqlx.Conn, fixes []uint64, now time.Time, progress func(int64)) (written, deleted int64, err error) {
	if len(fixes) == 0 {
		return 0, 0, nil
	}
	tx, err := conn.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return 0, 0, fmt.Errorf("beginning the correction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	dayStr := dc.day.Format(dayLayout)
	const chunk = 1000
	var sb strings.Builder
	args := make([]any, 0, chunk*8)
	for start := 0; start < len(fixes); start += chunk {
		part := fixes[start:min(start+chunk, len(fixes))]
		sb.Reset()
		args = args[:0]
		sb.WriteString("INSERT INTO item_counts_minute (event_date, minute_start, type, item_id, channel, city, cnt, updated_at) VALUES ")
		n := 0
		for _, f := range part {
			key := dc.keyOf(f)
			delta := dc.n[key]
			if delta == 0 {
				continue
			}
			if n > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?,?,?,?)")
			k := dc.minuteKey(key)
			args = append(args, dayStr, k.Minute, k.Type, k.ItemID, k.Channel, k.City, delta, now)
			n++
		}
		if n > 0 {
			sb.WriteString(" ON DUPLICATE KEY UPDATE cnt = cnt + VALUES(cnt), updated_at = VALUES(updated_at)")
			if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
				return 0, 0, fmt.Errorf("correcting %d buckets: %w", n, err)
			}
			written += int64(n)
			progress(written)
		}
	}
	// Buckets no event supported at the snapshot: gone unless the stream
	// counted an event in them since.
	var drops []uint64
	for _, f := range fixes {
		if _, drop := dc.liveOnly[dc.keyOf(f)]; drop {
			drops = append(drops, f)
		}
	}
	for start := 0; start < len(drops); start += 200 {
		part := drops[start:min(start+200, len(drops))]
		sb.Reset()
		args = args[:0]
		sb.WriteString("DELETE FROM item_counts_minute WHERE event_date = ? AND cnt <= 0 AND (")
		args = append(args, dayStr)
		for i, f := range part {
			if i > 0 {
				sb.WriteString(" OR ")
			}
			sb.WriteString("(minute_start = ? AND type = ? AND item_id = ? AND channel = ? AND city = ?)")
			k := dc.minuteKey(dc.keyOf(f))
			args = append(args, k.Minute, k.Type, k.ItemID, k.Channel, k.City)
		}
		sb.WriteString(")")
		r, err := tx.ExecContext(ctx, sb.String(), args...)
		if err != nil {
			return 0, 0, fmt.Errorf("deleting %d unsupported buckets: %w", len(part), err)
		}
		if n, err := r.RowsAffected(); err == nil {
			deleted += n
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("committing the correction: %w", err)
	}
	return written, deleted, nil
}

// SeedOffsets stores a pipeline's starting positions in kafka_offsets (the
// rows the batch writer fences on), in one transaction. Without replace it
// refuses, with ErrOffsetsExist, when the pipeline already has a row for
// the topic, unless the rows equal offsets exactly (a retried call).
func SeedOffsets(ctx context.Context, db *sqlx.DB, pipeline, topic string, offsets map[int32]int64, replace bool) (previous map[int32]int64, err error) {
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("storing offsets of %s/%s: %w", pipeline, topic, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	rows, err := tx.QueryContext(ctx, "SELECT kafka_partition, next_offset FROM kafka_offsets WHERE pipeline = ? AND topic = ? FOR UPDATE", pipeline, topic)
	if err != nil {
		return nil, fmt.Errorf("storing offsets of %s/%s: %w", pipeline, topic, err)
	}
	previous = map[int32]int64{}
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			rows.Close()
			return nil, fmt.Errorf("storing offsets of %s/%s: %w", pipeline, topic, err)
		}
		previous[p] = o
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storing offsets of %s/%s: %w", pipeline, topic, err)
	}
	if len(previous) > 0 && !replace {
		same := len(previous) == len(offsets)
		for p, o := range offsets {
			if previous[p] != o {
				same = false
			}
		}
		if same {
			_ = tx.Rollback()
			return previous, nil
		}
		return previous, ErrOffsetsExist
	}
	parts := make([]int32, 0, len(offsets))
	for p := range offsets {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	now := time.Now().UTC()
	q := "INSERT INTO kafka_offsets (pipeline, topic, kafka_partition, next_offset, updated_at) VALUES (?, ?, ?, ?, ?)"
	if replace {
		q += " ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset), updated_at = VALUES(updated_at)"
	}
	for _, p := range parts {
		if _, err := tx.ExecContext(ctx, q, pipeline, topic, p, offsets[p], now); err != nil {
			if mysqlErrNumber(err) == errDupEntry { // a consumer of the pipeline raced us
				return previous, ErrOffsetsExist
			}
			return nil, fmt.Errorf("storing offset of %s/%s/%d: %w", pipeline, topic, p, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("storing offsets of %s/%s: %w", pipeline, topic, err)
	}
	return previous, nil
}

// ErrOffsetsExist means kafka_offsets already holds positions for the
// pipeline and topic.
var ErrOffsetsExist = errors.New("kafka_offsets already holds offsets for this pipeline and topic")
