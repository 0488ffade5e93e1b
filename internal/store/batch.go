package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/aggregate"
	"github.com/sluicedata/sluice/internal/sqltext"
	"github.com/sluicedata/sluice/schemas"
)

// ErrFenced means the stored offset of a partition is no longer the one the
// batch started from: another consumer attempt committed first. The batch
// was rolled back; the caller must re-read its positions from kafka_offsets.
var ErrFenced = errors.New("offset fence: another consumer advanced the partition")

// EventRow is a valid event with the Kafka coordinates it was read from.
type EventRow struct {
	Event     schemas.Event
	Partition int32
	Offset    int64
}

// DeadLetter is a message parked instead of ingested.
type DeadLetter struct {
	Partition int32
	Offset    int64
	Raw       []byte
	Reason    string
}

// OffsetAdvance moves a partition's stored position from From to To.
// From is -1 when kafka_offsets has no row for the partition yet.
type OffsetAdvance struct {
	Partition int32
	From      int64
	To        int64
}

// Batch is everything one consumer pull commits in one transaction.
type Batch struct {
	Pipeline string
	Topic    string
	Events   []EventRow
	// Refs are more events, by reference, written after Events: the
	// consumer hands over the rows of its queue rather than copying them.
	Refs    []*EventRow
	Dead    []DeadLetter
	Offsets []OffsetAdvance
}

// EventCount is the number of events in b, Events and Refs together.
func (b *Batch) EventCount() int { return len(b.Events) + len(b.Refs) }

// appendRows appends a pointer to every event of b to dst, Events first.
func (b *Batch) appendRows(dst []*EventRow) []*EventRow {
	for i := range b.Events {
		dst = append(dst, &b.Events[i])
	}
	return append(dst, b.Refs...)
}

// Result says what a committed batch changed.
type Result struct {
	Inserted    int // new rows in events
	Duplicates  int // events whose (event_date, event_id) was already stored or repeated in the batch
	DeadLetters int // rows added to dead_letters (including rows MySQL refused)
	CountRows   int // item_counts_minute rows touched
}

// Writer commits batches exactly once: raw events (idempotent on
// (event_date, event_id)), the per-minute counts of the events that were new,
// dead letters and the partitions' next offsets go in one transaction, and
// the transaction only commits if every partition's stored offset is still
// the one the batch started from.
type Writer struct {
	DB *sqlx.DB
	// Now is the clock for ingested_at/updated_at; time.Now when nil.
	Now func() time.Time
	// MaxStmtBytes bounds one multi-row INSERT (default 4 MiB, well under
	// MySQL's 16 MiB max_allowed_packet default).
	MaxStmtBytes int
	// MaxStmtRows bounds rows per INSERT (default 2000), keeping a statement
	// under the 65,535 placeholder limit if the driver ever prepares it.
	MaxStmtRows int
	// MaxLoadRows bounds rows per LOAD DATA statement (default 50000; the
	// data streams to the server, so max_allowed_packet does not apply).
	MaxLoadRows int
	// NoLoadData writes raw events with multi-row INSERT only; by default
	// they go with LOAD DATA LOCAL (less MySQL CPU per row), falling back to
	// INSERT when the server does not allow it.
	NoLoadData bool

	redone, rowByRow, lookups atomic.Int64
}

// WriterStats counts how a Writer's batches went, since it was made.
type WriterStats struct {
	// LoadRedone: batches LOAD DATA could not vouch for (warnings other
	// than duplicate keys), rolled back and written with INSERT.
	LoadRedone int64
	// RowByRow: batches MySQL refused a row of, written one row at a time.
	RowByRow int64
	// Lookups: statements whose new rows were found by querying ingest_id
	// (the duplicate-key warnings did not name the skipped rows).
	Lookups int64
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{LoadRedone: w.redone.Load(), RowByRow: w.rowByRow.Load(), Lookups: w.lookups.Load()}
}

// stmtBufs recycles statement buffers across batches and writers.
var stmtBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

func (w *Writer) now() time.Time {
	if w.Now != nil {
		return w.Now().UTC()
	}
	return time.Now().UTC()
}

// Write commits b. Deadlocks and lock wait timeouts are retried a few times;
// ErrFenced and other errors are returned with nothing written. Rows MySQL
// refuses for good (data too long, no partition) are moved to dead_letters
// and the rest of the batch commits.
func (w *Writer) Write(ctx context.Context, b *Batch) (Result, error) {
	var (
		res Result
		err error
	)
	mode := modeLoad
	if w.NoLoadData || loadDataOff.Load() {
		mode = modeInsert
	}
	for attempt := 0; ; attempt++ {
		res, err = w.writeOnce(ctx, b, mode)
		if err == nil {
			return res, nil
		}
		if mode == modeLoad && errors.Is(err, errLoadUnsure) {
			w.redone.Add(1)
			mode = modeInsert
			continue
		}
		if mode != modeRowByRow && IsRowDataError(err) {
			w.rowByRow.Add(1)
			mode = modeRowByRow
			continue
		}
		if !IsRetryableConflict(err) || attempt >= 8 {
			return Result{}, err
		}
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
}

// rowKey is an events primary key: (event_date as days since the epoch,
// event_id).
type rowKey struct {
	day int64
	id  string
}

func keyOf(e *schemas.Event) rowKey {
	u := e.OccurredAt.Unix()
	day := u / 86400
	if u%86400 < 0 {
		day-- // floor, for times before 1970
	}
	return rowKey{day: day, id: e.EventID}
}

// How a batch's raw events are written.
const (
	modeLoad     = iota // LOAD DATA LOCAL ... IGNORE, one statement per chunk
	modeInsert          // multi-row INSERT ... ON DUPLICATE KEY UPDATE
	modeRowByRow        // one INSERT per row; refused rows become dead letters
)

func (w *Writer) writeOnce(ctx context.Context, b *Batch, mode int) (res Result, err error) {
	now := w.now()
	tx, err := w.DB.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return res, fmt.Errorf("beginning batch transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()

	// 1. Fence first: the offset row locks serialise competing attempts.
	if err := advanceOffsets(ctx, tx, b, now); err != nil {
		return res, err
	}

	// 2. Raw events, the first of each key in the batch. LOAD DATA ...
	// IGNORE keeps the first row of a key itself and names the later ones
	// in its warnings (withoutDuplicates), so only INSERT, which would
	// count both, needs the in-batch map (4 % of the worker's CPU, pprof).
	sc := getScratch()
	defer putScratch(sc)
	rows := b.appendRows(sc.rows[:0])
	if mode != modeLoad {
		seen := sc.seen
		rows = slices.DeleteFunc(rows, func(r *EventRow) bool {
			k := keyOf(&r.Event)
			if _, dup := seen[k]; dup {
				return true
			}
			seen[k] = struct{}{}
			return false
		})
	}
	sc.rows = rows
	ingestID := newIngestID()
	dead := append([]DeadLetter(nil), b.Dead...)
	var fresh []*EventRow
	if mode == modeRowByRow {
		fresh, dead, err = w.insertRowByRow(ctx, tx, rows, ingestID, now, dead)
	} else {
		fresh, err = w.insertEvents(ctx, tx, rows, ingestID, now, mode == modeLoad, sc.fresh[:0])
		sc.fresh = fresh
	}
	if err != nil {
		return res, err
	}
	res.Inserted = len(fresh)
	// Everything that is neither new nor refused by MySQL was a duplicate.
	res.Duplicates = b.EventCount() - len(fresh) - (len(dead) - len(b.Dead))

	// 3. Dead letters.
	if err := insertDeadLetters(ctx, tx, b, dead, now); err != nil {
		return res, err
	}
	res.DeadLetters = len(dead)

	// 4. Live aggregates from the new events only (a redelivered event_id
	// counts once), last: their rows' locks are held only until the commit
	// right after, and updated_at is within milliseconds of it.
	n, err := upsertCounts(ctx, tx, fresh, w.now(), sc)
	if err != nil {
		return res, err
	}
	res.CountRows = n

	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("committing batch: %w", err)
	}
	return res, nil
}

func advanceOffsets(ctx context.Context, tx *sqlx.Tx, b *Batch, now time.Time) error {
	for _, o := range b.Offsets {
		if o.To == o.From {
			continue
		}
		if o.From < 0 {
			_, err := tx.ExecContext(ctx, `INSERT INTO kafka_offsets (pipeline, topic, kafka_partition, next_offset, updated_at) VALUES (?, ?, ?, ?, ?)`,
				b.Pipeline, b.Topic, o.Partition, o.To, now)
			if mysqlErrNumber(err) == errDupEntry {
				return fmt.Errorf("partition %d: expected no stored offset: %w", o.Partition, ErrFenced)
			}
			if err != nil {
				return fmt.Errorf("storing offset of partition %d: %w", o.Partition, err)
			}
			continue
		}
		r, err := tx.ExecContext(ctx, `UPDATE kafka_offsets SET next_offset = ?, updated_at = ? WHERE pipeline = ? AND topic = ? AND kafka_partition = ? AND next_offset = ?`,
			o.To, now, b.Pipeline, b.Topic, o.Partition, o.From)
		if err != nil {
			return fmt.Errorf("advancing offset of partition %d: %w", o.Partition, err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return fmt.Errorf("advancing offset of partition %d: %w", o.Partition, err)
		} else if n != 1 {
			return fmt.Errorf("partition %d: expected stored offset %d: %w", o.Partition, o.From, ErrFenced)
		}
	}
	return nil
}

// EventColumns are the events columns the writer fills, in the order its
// INSERT and LOAD DATA statements list them.
const EventColumns = "event_date, event_id, type, occurred_at, user_id, item_id, channel, city, attrs, src_partition, src_offset, ingest_id, ingested_at"

const insertEventsHead = "INSERT INTO events (" + EventColumns + ") VALUES "
const insertEventsTail = " ON DUPLICATE KEY UPDATE event_id = event_id"

func eventArgs(args []any, r *EventRow, ingestID int64, now time.Time) []any {
	e := &r.Event
	var attrs any
	if len(e.Attrs) > 0 {
		attrs = string(e.Attrs)
	}
	return append(args, e.EventDate().Format(dayLayout), e.EventID, e.Type, e.OccurredAt.UTC(), e.UserID,
		e.ItemID, e.Channel, e.City, attrs, r.Partition, r.Offset, ingestID, now)
}

// appendEventValues renders one row of insertEventsHead's columns; tail
// holds ",ingest_id,'ingested_at')".
func appendEventValues(b []byte, r *EventRow, tail []byte) []byte {
	e := &r.Event
	b = append(b, '(', '\'')
	b = sqltext.AppendDate(b, e.OccurredAt)
	b = append(b, '\'', ',')
	b = sqltext.AppendQuoted(b, e.EventID)
	b = append(b, ',')
	b = sqltext.AppendQuoted(b, e.Type)
	b = append(b, ',')
	b = appendQuotedTime(b, e.OccurredAt, true)
	b = append(b, ',')
	b = sqltext.AppendQuoted(b, e.UserID)
	b = append(b, ',')
	b = sqltext.AppendQuoted(b, e.ItemID)
	b = append(b, ',')
	b = sqltext.AppendQuoted(b, e.Channel)
	b = append(b, ',')
	b = sqltext.AppendQuoted(b, e.City)
	b = append(b, ',')
	if len(e.Attrs) > 0 {
		b = sqltext.AppendQuoted(b, string(e.Attrs))
	} else {
		b = append(b, "NULL"...)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, r.Offset, 10)
	return append(b, tail...)
}

// appendQuotedTime renders t in UTC as a DATETIME literal, with
// microseconds when micro.
func appendQuotedTime(b []byte, t time.Time, micro bool) []byte {
	b = append(b, '\'')
	b = sqltext.AppendDateTime(b, t, micro)
	return append(b, '\'')
}

func rowSize(r *EventRow) int {
	e := &r.Event
	return 120 + len(e.EventID) + len(e.UserID) + len(e.ItemID) + len(e.Channel) + len(e.City) + 2*len(e.Attrs)
}

// insertEvents inserts rows in multi-row statements and returns the ones that
// were new. With ON DUPLICATE KEY UPDATE a no-op update reports 0 affected
// rows, so affected == len(chunk) means every row was new; otherwise the rows
// carrying this batch's ingest_id are the new ones.
func (w *Writer) insertEvents(ctx context.Context, tx *sqlx.Tx, rows []*EventRow, ingestID int64, now time.Time, load bool, fresh []*EventRow) ([]*EventRow, error) {
	maxBytes, maxRows, maxLoad := w.MaxStmtBytes, w.MaxStmtRows, w.MaxLoadRows
	if maxBytes <= 0 {
		maxBytes = 4 << 20
	}
	if maxRows <= 0 {
		maxRows = 2000
	}
	if maxLoad <= 0 {
		maxLoad = 50000
	}
	// The statement is rendered here, values escaped in Go, rather than
	// interpolated by the driver: boxing 13 values per row into []any was a
	// tenth of the worker's CPU and much of its garbage (pprof).
	tail := appendQuotedTime(append(strconv.AppendInt([]byte{','}, ingestID, 10), ','), now, true)
	tail = append(tail, ')')
	pooled := stmtBufs.Get().(*[]byte)
	defer stmtBufs.Put(pooled)
	ingestLit := strconv.AppendInt(nil, ingestID, 10)
	nowLit := sqltext.AppendDateTime(nil, now, true)
	for start := 0; start < len(rows); {
		var (
			chunk []*EventRow
			n     int64
			dups  []string
			err   error
		)
		if load {
			end := min(len(rows), start+maxLoad)
			chunk = rows[start:end]
			// Rows are rendered as the driver sends them, 64 KiB at a time,
			// not into one buffer of the whole batch.
			src := &tsvRows{rows: chunk, buf: (*pooled)[:0], ingestID: ingestLit, now: nowLit}
			n, dups, err = loadEvents(ctx, tx, src, len(chunk))
			*pooled = src.buf
			start = end
		} else {
			buf := append((*pooled)[:0], insertEventsHead...)
			end, size := start, 0
			for end < len(rows) && end-start < maxRows && (end == start || size+rowSize(rows[end]) <= maxBytes) {
				if end > start {
					buf = append(buf, ',')
				}
				buf = appendEventValues(buf, rows[end], tail)
				size += rowSize(rows[end])
				end++
			}
			buf = append(buf, insertEventsTail...)
			*pooled = buf
			chunk = rows[start:end]
			start = end
			var r sql.Result
			if r, err = tx.ExecContext(ctx, string(buf)); err == nil {
				n, err = r.RowsAffected()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("inserting %d events: %w", len(chunk), err)
		}
		if int(n) == len(chunk) {
			fresh = append(fresh, chunk...)
		} else if ours, ok := withoutDuplicates(chunk, dups, int(n)); ok {
			fresh = append(fresh, ours...)
		} else {
			w.lookups.Add(1)
			ours, err := ownedRows(ctx, tx, chunk, ingestID)
			if err != nil {
				return nil, err
			}
			fresh = append(fresh, ours...)
		}
	}
	return fresh, nil
}

// loadDataOff is set once the server refuses LOAD DATA LOCAL (local_infile
// off, as on MySQL 8 by default): from then on batches use INSERT.
var loadDataOff atomic.Bool

// errLoadUnsure: LOAD DATA raised warnings that are not all duplicate keys
// (LOCAL turns data errors into warnings and truncated or skipped rows), or
// more than can be inspected; the batch is rolled back and written with
// INSERT, which fails loudly instead.
var errLoadUnsure = errors.New("LOAD DATA raised warnings other than duplicate keys")

var loadSeq atomic.Int64

// LoadTSV runs LOAD DATA LOCAL INFILE of data into table's columns through
// db (a connection or transaction). data holds tab-separated fields escaped
// by sqltext.AppendTSV (\N for NULL), one row per line. With ignore, a row
// whose key exists is skipped with a 1062 warning. LOCAL turns data errors
// into warnings: callers that care read @@warning_count on the same db.
func LoadTSV(ctx context.Context, db sqlx.ExecerContext, table, columns string, ignore bool, data []byte) (sql.Result, error) {
	return LoadTSVFrom(ctx, db, table, columns, ignore, bytes.NewReader(data))
}

// LoadTSVFrom is LoadTSV reading the rows from r as the driver sends them.
func LoadTSVFrom(ctx context.Context, db sqlx.ExecerContext, table, columns string, ignore bool, r io.Reader) (sql.Result, error) {
	name := "sluice-tsv-" + strconv.FormatInt(loadSeq.Add(1), 10)
	mysql.RegisterReaderHandler(name, func() io.Reader { return r })
	defer mysql.DeregisterReaderHandler(name)
	mode := ""
	if ignore {
		mode = "IGNORE "
	}
	return db.ExecContext(ctx, "LOAD DATA LOCAL INFILE 'Reader::"+name+"' "+mode+"INTO TABLE "+QuoteIdent(table)+
		" CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ("+columns+")")
}

// loadEvents loads TSV rows into events inside tx and returns how many were
// inserted and, when rows were skipped, the keys MySQL printed for them.
// Rows whose key exists are skipped (IGNORE), each with a 1062 warning; any
// other warning, or more warnings than the session keeps
// (max_error_count), makes the result unsure.
func loadEvents(ctx context.Context, tx *sqlx.Tx, data io.Reader, rows int) (int64, []string, error) {
	res, err := LoadTSVFrom(ctx, tx, "events", EventColumns, true, data)
	if err != nil {
		switch mysqlErrNumber(err) {
		case 1148, 3948, 1235: // not allowed / local infile disabled / not supported
			loadDataOff.Store(true)
			return 0, nil, fmt.Errorf("%w: %v", errLoadUnsure, err)
		}
		return 0, nil, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, nil, err
	}
	var warnings int
	if err := tx.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
		return 0, nil, err
	}
	if warnings == 0 {
		return n, nil, nil
	}
	if warnings > rows-int(n) {
		return 0, nil, errLoadUnsure
	}
	wr, err := tx.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return 0, nil, err
	}
	defer wr.Close()
	keys := make([]string, 0, warnings)
	for wr.Next() {
		var level, msg string
		var code int
		if err := wr.Scan(&level, &code, &msg); err != nil {
			return 0, nil, err
		}
		if code != 1062 {
			return 0, nil, errLoadUnsure
		}
		keys = append(keys, msg)
	}
	if err := wr.Err(); err != nil {
		return 0, nil, err
	}
	if len(keys) != warnings {
		return 0, nil, errLoadUnsure
	}
	return n, keys, nil
}

// withoutDuplicates returns the rows of chunk that LOAD DATA inserted,
// given the 1062 warnings of the rows it skipped ("Duplicate entry
// '2026-12-01-id' for key ..." on MariaDB and MySQL alike: the key's
// columns joined by '-'). Of rows sharing a key LOAD DATA inserts the first
// (unless the key was stored already) and skips the later ones, so the
// warnings are matched from the chunk's end. It reports false when the
// warnings do not name exactly the skipped rows; the caller then asks the
// table.
func withoutDuplicates(chunk []*EventRow, warnings []string, inserted int) ([]*EventRow, bool) {
	if len(warnings) != len(chunk)-inserted {
		return nil, false
	}
	const head = "Duplicate entry '"
	skipped := make(map[string]int, len(warnings))
	for _, w := range warnings {
		rest, ok := strings.CutPrefix(w, head)
		if !ok {
			return nil, false
		}
		entry, _, ok := strings.Cut(rest, "' for key ")
		if !ok {
			return nil, false
		}
		skipped[entry]++
	}
	keep := make([]bool, len(chunk))
	left := len(warnings)
	var key []byte
	for i := len(chunk) - 1; i >= 0; i-- {
		r := chunk[i]
		key = sqltext.AppendDate(key[:0], r.Event.OccurredAt)
		key = append(key, '-')
		key = append(key, r.Event.EventID...)
		if n := skipped[string(key)]; n > 0 {
			skipped[string(key)] = n - 1
			left--
			continue
		}
		keep[i] = true
	}
	if left != 0 {
		return nil, false
	}
	out := make([]*EventRow, 0, inserted)
	for i, r := range chunk {
		if keep[i] {
			out = append(out, r)
		}
	}
	return out, true
}

// tsvRows is an io.Reader of rows rendered by appendEventTSV.
type tsvRows struct {
	rows          []*EventRow
	next          int
	buf           []byte
	off           int
	ingestID, now []byte
}

func (t *tsvRows) Read(p []byte) (int, error) {
	if t.off == len(t.buf) {
		if t.next == len(t.rows) {
			return 0, io.EOF
		}
		t.buf, t.off = t.buf[:0], 0
		for t.next < len(t.rows) && len(t.buf) < 64<<10 {
			t.buf = appendEventTSV(t.buf, t.rows[t.next], t.ingestID, t.now)
			t.next++
		}
	}
	n := copy(p, t.buf[t.off:])
	t.off += n
	return n, nil
}

// appendEventTSV renders one row for loadEventsSQL.
func appendEventTSV(b []byte, r *EventRow, ingestID, now []byte) []byte {
	e := &r.Event
	b = sqltext.AppendDate(b, e.OccurredAt)
	b = append(b, '\t')
	b = sqltext.AppendTSV(b, e.EventID)
	b = append(b, '\t')
	b = sqltext.AppendTSV(b, e.Type)
	b = append(b, '\t')
	b = sqltext.AppendDateTime(b, e.OccurredAt, true)
	for _, f := range [...]string{e.UserID, e.ItemID, e.Channel, e.City} {
		b = append(b, '\t')
		b = sqltext.AppendTSV(b, f)
	}
	b = append(b, '\t')
	if len(e.Attrs) > 0 {
		b = sqltext.AppendTSV(b, string(e.Attrs))
	} else {
		b = append(b, '\\', 'N')
	}
	b = append(b, '\t')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, '\t')
	b = append(b, ingestID...)
	b = append(b, '\t')
	b = append(b, now...)
	return append(b, '\n')
}

// ownedRows returns the rows of chunk whose stored copy carries ingestID.
func ownedRows(ctx context.Context, tx *sqlx.Tx, chunk []*EventRow, ingestID int64) ([]*EventRow, error) {
	byDate := map[string][]*EventRow{}
	var dates []string
	for _, r := range chunk {
		d := r.Event.EventDate().Format(dayLayout)
		if _, ok := byDate[d]; !ok {
			dates = append(dates, d)
		}
		byDate[d] = append(byDate[d], r)
	}
	sort.Strings(dates)
	var out []*EventRow
	for _, d := range dates {
		group := byDate[d]
		q, args, err := sqlx.In("SELECT event_id FROM events WHERE event_date = ? AND ingest_id = ? AND event_id IN (?)", d, ingestID, ids(group))
		if err != nil {
			return nil, fmt.Errorf("finding new events: %w", err)
		}
		var mine []string
		if err := tx.SelectContext(ctx, &mine, q, args...); err != nil {
			return nil, fmt.Errorf("finding new events: %w", err)
		}
		set := make(map[string]struct{}, len(mine))
		for _, id := range mine {
			set[id] = struct{}{}
		}
		for _, r := range group {
			if _, ok := set[r.Event.EventID]; ok {
				delete(set, r.Event.EventID) // a later row of the key was not inserted
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func ids(rows []*EventRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Event.EventID
	}
	return out
}

// insertRowByRow is the slow path after MySQL refused a multi-row insert for
// a row's data: each row goes alone (a failed statement rolls back only
// itself), and refused rows become dead letters.
func (w *Writer) insertRowByRow(ctx context.Context, tx *sqlx.Tx, rows []*EventRow, ingestID int64, now time.Time, dead []DeadLetter) ([]*EventRow, []DeadLetter, error) {
	var fresh []*EventRow
	q := insertEventsHead + "(?,?,?,?,?,?,?,?,?,?,?,?,?)" + insertEventsTail
	for _, r := range rows {
		res, err := tx.ExecContext(ctx, q, eventArgs(nil, r, ingestID, now)...)
		if err != nil {
			if !IsRowDataError(err) {
				return nil, nil, fmt.Errorf("inserting event %s: %w", r.Event.EventID, err)
			}
			raw, merr := json.Marshal(&r.Event)
			if merr != nil {
				raw = []byte(r.Event.EventID)
			}
			dead = append(dead, DeadLetter{Partition: r.Partition, Offset: r.Offset, Raw: raw, Reason: "mysql refused row: " + err.Error()})
			continue
		}
		if n, _ := res.RowsAffected(); n == 1 {
			fresh = append(fresh, r)
		}
	}
	return fresh, dead, nil
}

func upsertCounts(ctx context.Context, tx *sqlx.Tx, fresh []*EventRow, now time.Time, sc *scratch) (int, error) {
	if len(fresh) == 0 {
		return 0, nil
	}
	tally := &sc.tally
	for _, r := range fresh {
		tally.Add(&r.Event)
	}
	// A fixed order keeps concurrent writers from deadlocking on each other.
	buckets := tally.Sorted()
	nowLit := appendQuotedTime(nil, now, true)
	pooled := stmtBufs.Get().(*[]byte)
	defer stmtBufs.Put(pooled)
	const chunk = 2000
	for start := 0; start < len(buckets); start += chunk {
		part := buckets[start:min(start+chunk, len(buckets))]
		b := append((*pooled)[:0], "INSERT INTO item_counts_minute (event_date, minute_start, type, item_id, channel, city, cnt, updated_at) VALUES "...)
		for i, bk := range part {
			k := &bk.Key
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '(', '\'')
			b = sqltext.AppendDate(b, k.Minute)
			b = append(b, '\'', ',')
			b = appendQuotedTime(b, k.Minute, false)
			b = append(b, ',')
			b = sqltext.AppendQuoted(b, k.Type)
			b = append(b, ',')
			b = sqltext.AppendQuoted(b, k.ItemID)
			b = append(b, ',')
			b = sqltext.AppendQuoted(b, k.Channel)
			b = append(b, ',')
			b = sqltext.AppendQuoted(b, k.City)
			b = append(b, ',')
			b = strconv.AppendInt(b, bk.N, 10)
			b = append(b, ',')
			b = append(b, nowLit...)
			b = append(b, ')')
		}
		b = append(b, " ON DUPLICATE KEY UPDATE cnt = cnt + VALUES(cnt), updated_at = VALUES(updated_at)"...)
		*pooled = b
		if _, err := tx.ExecContext(ctx, string(b)); err != nil {
			return 0, fmt.Errorf("upserting %d minute counts: %w", len(part), err)
		}
	}
	return len(buckets), nil
}

// scratch is what writing a batch needs besides its statements, reused
// across batches (a 20000-event batch made a few MB of maps and slices).
type scratch struct {
	seen  map[rowKey]struct{}
	rows  []*EventRow
	fresh []*EventRow
	tally aggregate.Tally
}

var scratches = sync.Pool{New: func() any {
	return &scratch{seen: map[rowKey]struct{}{}}
}}

func getScratch() *scratch { return scratches.Get().(*scratch) }

func putScratch(sc *scratch) {
	clear(sc.seen)
	sc.tally.Reset()
	clear(sc.rows[:cap(sc.rows)])
	clear(sc.fresh[:cap(sc.fresh)])
	scratches.Put(sc)
}

// MaxReasonLen bounds dead_letters.reason.
const MaxReasonLen = 1024

func insertDeadLetters(ctx context.Context, tx *sqlx.Tx, b *Batch, dead []DeadLetter, now time.Time) error {
	if len(dead) == 0 {
		return nil
	}
	for start := 0; start < len(dead); start += 500 {
		part := dead[start:min(start+500, len(dead))]
		var sb strings.Builder
		sb.WriteString("INSERT INTO dead_letters (dl_date, pipeline, topic, kafka_partition, kafka_offset, raw, reason, created_at) VALUES ")
		args := make([]any, 0, len(part)*8)
		for i, d := range part {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?,?,?,?)")
			raw := d.Raw
			if raw == nil {
				raw = []byte{}
			}
			args = append(args, now.Format(dayLayout), b.Pipeline, b.Topic, d.Partition, d.Offset, raw, truncateUTF8(d.Reason, MaxReasonLen), now)
		}
		sb.WriteString(" ON DUPLICATE KEY UPDATE reason = VALUES(reason)")
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("inserting %d dead letters: %w", len(part), err)
		}
	}
	return nil
}

func truncateUTF8(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

func newIngestID() int64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return time.Now().UnixNano()
	}
	return int64(binary.LittleEndian.Uint64(b[:]) >> 1)
}

// CaughtUp reports whether the stored next offsets reach the topic's end
// offsets on every partition (a partition with no row counts as 0).
func CaughtUp(end, stored map[int32]int64) bool {
	for p, e := range end {
		if stored[p] != e {
			return false
		}
	}
	return true
}

// LoadOffsets returns the stored next offset of every partition of a
// pipeline's topic.
func LoadOffsets(ctx context.Context, db sqlx.QueryerContext, pipeline, topic string) (map[int32]int64, error) {
	rows, err := db.QueryContext(ctx, "SELECT kafka_partition, next_offset FROM kafka_offsets WHERE pipeline = ? AND topic = ?", pipeline, topic)
	if err != nil {
		return nil, fmt.Errorf("loading offsets of %s/%s: %w", pipeline, topic, err)
	}
	defer rows.Close()
	out := map[int32]int64{}
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			return nil, fmt.Errorf("loading offsets of %s/%s: %w", pipeline, topic, err)
		}
		out[p] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("loading offsets of %s/%s: %w", pipeline, topic, err)
	}
	return out, nil
}
