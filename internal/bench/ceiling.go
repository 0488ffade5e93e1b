package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/sqltext"
	"github.com/sluicedata/sluice/internal/store"
)

const ceilingTable = "events_ceiling"

const eventColumns = store.EventColumns

// ceilingFullPasses is how many times the best point of each method runs on
// all rows before the faster method becomes the ceiling.
const ceilingFullPasses = 2

// Ceiling methods.
const (
	methodInsert   = "insert"    // multi-row INSERT, values escaped in Go, one statement per batch
	methodLoadData = "load_data" // LOAD DATA LOCAL INFILE from an io.Reader, one statement per batch
)

// ceilingRun is one measured configuration.
type ceilingRun struct {
	Method     string  `json:"method"`
	Batch      int     `json:"batch"`
	Writers    int     `json:"writers"`
	Rows       int     `json:"rows"`
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_s"`
}

// renderInsert builds one multi-row INSERT for rows.
func renderInsert(b []byte, rows []row, ingestID, ingestedAt string) []byte {
	b = append(b, "INSERT INTO "+ceilingTable+" ("+eventColumns+") VALUES "...)
	for i := range rows {
		r := &rows[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '(')
		b = sqltext.AppendQuoted(b, r.date)
		b = append(b, ',')
		b = sqltext.AppendQuoted(b, r.id)
		b = append(b, ',')
		b = sqltext.AppendQuoted(b, r.typ)
		b = append(b, ',')
		b = sqltext.AppendQuoted(b, r.occurred)
		b = append(b, ',')
		b = sqltext.AppendQuoted(b, r.user)
		b = append(b, ',')
		b = sqltext.AppendQuoted(b, r.item)
		b = append(b, ',')
		b = sqltext.AppendQuoted(b, r.channel)
		b = append(b, ',')
		b = sqltext.AppendQuoted(b, r.city)
		b = append(b, ',')
		if r.attrs == nil {
			b = append(b, "NULL"...)
		} else {
			b = sqltext.AppendQuoted(b, string(r.attrs))
		}
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(r.partition), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, r.offset, 10)
		b = append(b, ',')
		b = append(b, ingestID...)
		b = append(b, ",'"...)
		b = append(b, ingestedAt...)
		b = append(b, "')"...)
	}
	return b
}

// renderTSV builds the LOAD DATA input for rows.
func renderTSV(b []byte, rows []row, ingestID, ingestedAt string) []byte {
	for i := range rows {
		r := &rows[i]
		for _, s := range [...]string{r.date, r.id, r.typ, r.occurred, r.user, r.item, r.channel, r.city} {
			b = sqltext.AppendTSV(b, s)
			b = append(b, '\t')
		}
		if r.attrs == nil {
			b = append(b, `\N`...)
		} else {
			b = sqltext.AppendTSV(b, string(r.attrs))
		}
		b = append(b, '\t')
		b = strconv.AppendInt(b, int64(r.partition), 10)
		b = append(b, '\t')
		b = strconv.AppendInt(b, r.offset, 10)
		b = append(b, '\t')
		b = append(b, ingestID...)
		b = append(b, '\t')
		b = append(b, ingestedAt...)
		b = append(b, '\n')
	}
	return b
}

func randomIngestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(int64(binary.LittleEndian.Uint64(b[:])>>1), 10)
}

// runCeiling truncates the ceiling table and writes rows into it with
// method, batch rows per statement and writers concurrent connections.
func runCeiling(ctx context.Context, db *sqlx.DB, rows []row, method string, batch, writers int) (ceilingRun, error) {
	run := ceilingRun{Method: method, Batch: batch, Writers: writers, Rows: len(rows)}
	if _, err := db.ExecContext(ctx, "TRUNCATE TABLE "+ceilingTable); err != nil {
		return run, fmt.Errorf("truncating %s: %w", ceilingTable, err)
	}
	conns := make([]*sql.Conn, writers)
	for i := range conns {
		c, err := db.Conn(ctx)
		if err != nil {
			return run, err
		}
		defer c.Close()
		if err := c.PingContext(ctx); err != nil {
			return run, err
		}
		conns[i] = c
	}
	work := make(chan [2]int, len(rows)/batch+1)
	for start := 0; start < len(rows); start += batch {
		work <- [2]int{start, min(start+batch, len(rows))}
	}
	close(work)

	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	start := time.Now()
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for w := range work {
				if ctx.Err() != nil {
					return
				}
				chunk := rows[w[0]:w[1]]
				ingestID, now := randomIngestID(), time.Now().UTC().Format(mysqlDateTime6)
				switch method {
				case methodInsert:
					buf = renderInsert(buf[:0], chunk, ingestID, now)
					res, err := conn.ExecContext(ctx, string(buf))
					if err != nil {
						fail(fmt.Errorf("INSERT of %d rows: %w", len(chunk), err))
						return
					}
					if n, _ := res.RowsAffected(); int(n) != len(chunk) {
						fail(fmt.Errorf("INSERT of %d rows affected %d", len(chunk), n))
						return
					}
				case methodLoadData:
					buf = renderTSV(buf[:0], chunk, ingestID, now)
					res, err := store.LoadTSV(ctx, conn, ceilingTable, eventColumns, false, buf)
					if err != nil {
						fail(fmt.Errorf("LOAD DATA of %d rows: %w", len(chunk), err))
						return
					}
					if n, _ := res.RowsAffected(); int(n) != len(chunk) {
						fail(fmt.Errorf("LOAD DATA of %d rows loaded %d", len(chunk), n))
						return
					}
					// LOCAL turns data errors into warnings: there must be none.
					var warnings int
					if err := conn.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
						fail(err)
						return
					}
					if warnings > 0 {
						fail(fmt.Errorf("LOAD DATA of %d rows raised %d warnings", len(chunk), warnings))
						return
					}
				default:
					fail(fmt.Errorf("unknown method %q", method))
					return
				}
			}
		}()
	}
	wg.Wait()
	run.Seconds = time.Since(start).Seconds()
	if firstErr != nil {
		return run, firstErr
	}
	run.RowsPerSec = float64(len(rows)) / run.Seconds
	var n int
	if err := db.GetContext(ctx, &n, "SELECT COUNT(*) FROM "+ceilingTable); err != nil {
		return run, err
	}
	if n != len(rows) {
		return run, fmt.Errorf("%s holds %d rows after writing %d", ceilingTable, n, len(rows))
	}
	return run, nil
}

// tableSum is an order-independent checksum of a table's event columns
// (the Kafka coordinates optional), used to check that two tables hold the
// same rows.
type tableSum struct {
	Rows int64  `db:"n"`
	Sum  uint64 `db:"s"`
}

func checksum(ctx context.Context, db *sqlx.DB, table string, withCoords bool) (tableSum, error) {
	cols := "event_date, event_id, type, occurred_at, user_id, item_id, channel, city, IFNULL(attrs, '<null>')"
	if withCoords {
		cols += ", src_partition, src_offset"
	}
	var s tableSum
	err := db.GetContext(ctx, &s, "SELECT COUNT(*) AS n, COALESCE(SUM(CRC32(CONCAT_WS('|', "+cols+"))), 0) AS s FROM "+table)
	if err != nil {
		return s, fmt.Errorf("checksum of %s: %w", table, err)
	}
	return s, nil
}
