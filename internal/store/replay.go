package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/schemas"
)

// ReplaySelection chooses the dead letters a replay re-ingests.
type ReplaySelection struct {
	Pipeline string
	Topic    string
	// FromDate and ToDate bound dl_date (the day a letter was parked), inclusive.
	FromDate, ToDate time.Time
	// Partition and Offsets pick individual messages (Offsets needs Partition).
	Partition *int32
	Offsets   []int64
	// ReasonContains keeps letters whose reason contains this text.
	ReasonContains string
}

// ReplayCursor is the position of a replay: the last letter it looked at,
// in (dl_date, kafka_partition, kafka_offset) order.
type ReplayCursor struct {
	Date      string `json:"date"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	Scanned      int `json:"scanned"`
	Ingested     int `json:"ingested"`
	Duplicates   int `json:"duplicates"`
	StillInvalid int `json:"still_invalid"`
}

// Add sums two results.
func (r *ReplayResult) Add(o ReplayResult) {
	r.Scanned += o.Scanned
	r.Ingested += o.Ingested
	r.Duplicates += o.Duplicates
	r.StillInvalid += o.StillInvalid
}

type letter struct {
	Date      time.Time `db:"dl_date"`
	Partition int32     `db:"kafka_partition"`
	Offset    int64     `db:"kafka_offset"`
	Raw       []byte    `db:"raw"`
}

// ReplayChunk re-ingests up to limit parked letters after cursor in one
// transaction: letters that decode now (decode is the current validator)
// are written like any batch (raw row, minute counts of the new events) and
// marked replayed in the same transaction, so each is ingested exactly once
// however often a replay runs; letters still invalid stay parked with the
// new reason. It returns the counts, the new cursor and whether the
// selection is exhausted.
func (w *Writer) ReplayChunk(ctx context.Context, sel ReplaySelection, cursor ReplayCursor, limit int, decode func([]byte) (schemas.Event, error)) (ReplayResult, ReplayCursor, bool, error) {
	var res ReplayResult
	now := w.now()
	tx, err := w.DB.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return res, cursor, false, fmt.Errorf("beginning replay transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	q := `SELECT dl_date, kafka_partition, kafka_offset, raw FROM dead_letters
WHERE pipeline = ? AND topic = ? AND dl_date BETWEEN ? AND ? AND replayed_at IS NULL
  AND (dl_date > ? OR (dl_date = ? AND (kafka_partition > ? OR (kafka_partition = ? AND kafka_offset > ?))))`
	args := []any{sel.Pipeline, sel.Topic, sel.FromDate.Format(dayLayout), sel.ToDate.Format(dayLayout),
		cursor.Date, cursor.Date, cursor.Partition, cursor.Partition, cursor.Offset}
	if sel.Partition != nil {
		q += " AND kafka_partition = ?"
		args = append(args, *sel.Partition)
		if len(sel.Offsets) > 0 {
			q += " AND kafka_offset IN (?" + strings.Repeat(",?", len(sel.Offsets)-1) + ")"
			for _, o := range sel.Offsets {
				args = append(args, o)
			}
		}
	}
	if sel.ReasonContains != "" {
		q += " AND INSTR(reason, ?) > 0"
		args = append(args, sel.ReasonContains)
	}
	q += " ORDER BY dl_date, kafka_partition, kafka_offset LIMIT ? FOR UPDATE"
	args = append(args, limit)
	var letters []letter
	if err := tx.SelectContext(ctx, &letters, q, args...); err != nil {
		return res, cursor, false, fmt.Errorf("selecting dead letters: %w", err)
	}
	if len(letters) == 0 {
		return res, cursor, true, nil
	}
	res.Scanned = len(letters)

	var rows []*EventRow
	seen := map[rowKey]bool{}
	outcome := make([]string, len(letters))
	for i, l := range letters {
		ev, err := decode(l.Raw)
		if err != nil {
			outcome[i] = "still invalid: " + err.Error()
			res.StillInvalid++
			continue
		}
		k := keyOf(&ev)
		if seen[k] {
			outcome[i] = "duplicate"
			continue
		}
		seen[k] = true
		rows = append(rows, &EventRow{Event: ev, Partition: l.Partition, Offset: l.Offset})
	}
	ingestID := newIngestID()
	sc := getScratch()
	defer putScratch(sc)
	fresh, err := w.insertEvents(ctx, tx, rows, ingestID, now, false, nil)
	if err != nil {
		return res, cursor, false, err
	}
	if _, err := upsertCounts(ctx, tx, fresh, now, sc); err != nil {
		return res, cursor, false, err
	}
	isFresh := map[[2]int64]bool{}
	for _, r := range fresh {
		isFresh[[2]int64{int64(r.Partition), r.Offset}] = true
	}
	for i, l := range letters {
		if outcome[i] == "" {
			if isFresh[[2]int64{int64(l.Partition), l.Offset}] {
				outcome[i] = "ingested"
			} else {
				outcome[i] = "duplicate"
			}
		}
		var stmt string
		var a []any
		if strings.HasPrefix(outcome[i], "still invalid") {
			stmt = "UPDATE dead_letters SET replay_note = ? WHERE dl_date = ? AND pipeline = ? AND topic = ? AND kafka_partition = ? AND kafka_offset = ?"
			a = []any{truncateUTF8(outcome[i], MaxReasonLen)}
		} else {
			stmt = "UPDATE dead_letters SET replayed_at = ?, replay_note = ? WHERE dl_date = ? AND pipeline = ? AND topic = ? AND kafka_partition = ? AND kafka_offset = ?"
			a = []any{now, outcome[i]}
			if outcome[i] == "ingested" {
				res.Ingested++
			} else {
				res.Duplicates++
			}
		}
		a = append(a, l.Date.Format(dayLayout), sel.Pipeline, sel.Topic, l.Partition, l.Offset)
		if _, err := tx.ExecContext(ctx, stmt, a...); err != nil {
			return res, cursor, false, fmt.Errorf("marking dead letter %d/%d: %w", l.Partition, l.Offset, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return res, cursor, false, fmt.Errorf("committing replay: %w", err)
	}
	last := letters[len(letters)-1]
	next := ReplayCursor{Date: last.Date.Format(dayLayout), Partition: last.Partition, Offset: last.Offset}
	return res, next, len(letters) < limit, nil
}

// DeadLetter listing for operators.

// ParkedLetter is a dead letter as `sluice deadletters list` shows it.
type ParkedLetter struct {
	Date       time.Time    `db:"dl_date" json:"date"`
	Pipeline   string       `db:"pipeline" json:"pipeline"`
	Topic      string       `db:"topic" json:"topic"`
	Partition  int32        `db:"kafka_partition" json:"partition"`
	Offset     int64        `db:"kafka_offset" json:"offset"`
	Reason     string       `db:"reason" json:"reason"`
	CreatedAt  time.Time    `db:"created_at" json:"created_at"`
	ReplayedAt sql.NullTime `db:"replayed_at" json:"-"`
	ReplayNote *string      `db:"replay_note" json:"replay_note,omitempty"`
	Raw        []byte       `db:"raw" json:"-"`
}

// ListDeadLetters returns parked letters, newest first. pipeline and topic
// filter when not empty; includeReplayed also lists re-ingested ones.
func ListDeadLetters(ctx context.Context, db sqlx.QueryerContext, pipeline, topic string, since time.Time, includeReplayed bool, limit int) ([]ParkedLetter, error) {
	q := "SELECT dl_date, pipeline, topic, kafka_partition, kafka_offset, reason, created_at, replayed_at, replay_note, raw FROM dead_letters WHERE dl_date >= ?"
	args := []any{since.Format(dayLayout)}
	if pipeline != "" {
		q += " AND pipeline = ?"
		args = append(args, pipeline)
	}
	if topic != "" {
		q += " AND topic = ?"
		args = append(args, topic)
	}
	if !includeReplayed {
		q += " AND replayed_at IS NULL"
	}
	q += " ORDER BY created_at DESC, kafka_partition, kafka_offset LIMIT ?"
	args = append(args, limit)
	var out []ParkedLetter
	if err := sqlx.SelectContext(ctx, db, &out, q, args...); err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	return out, nil
}
