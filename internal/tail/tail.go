// Package tail implements Sluice's collector agent: it follows log files on
// a business server, like Flume's TAILDIR source, and ships their lines to
// Kafka without losing or duplicating any downstream.
//
// Files are tracked by identity (device and inode), not by name, so a file
// renamed by log rotation is read to its end while its successor is read
// from the start; a file found shorter than its read offset (copytruncate)
// is read again from the start. How far each file has been acknowledged by
// Kafka is kept in a positions file, written only after the
// acknowledgement, so a restart resumes where the last run stopped.
//
// Each line becomes one record. A line starting with '{' is taken for a v1
// event: valid ones are shipped re-encoded, invalid ones raw, to be parked
// in dead_letters downstream. Any other line becomes a type=log event whose
// event_id derives from the file's identity and the line's offset, so lines
// read twice after a crash are deduplicated downstream.
package tail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicedata/sluice/internal/kafka"
)

const instrumentationName = "github.com/sluicedata/sluice/internal/tail"

const (
	// backoffMin and backoffMax bound the wait between attempts to publish
	// a batch Kafka refused.
	backoffMin = 200 * time.Millisecond
	backoffMax = 5 * time.Second
	// saveInterval is how often, at most, positions are saved while
	// running; they are always saved on shutdown. A crash may thus ship
	// again up to this much acknowledged data, which downstream
	// deduplicates by event_id.
	saveInterval = time.Second
	// shutdownGrace is how long a publish attempt in flight may still
	// complete after Run's context ends, so that its position can be
	// saved.
	shutdownGrace = 5 * time.Second
	// headSize is how many leading bytes of a file fingerprint it.
	headSize = 256
	// minReadBuf is the smallest read buffer.
	minReadBuf = 256 << 10
)

// Publisher durably stores records. Publish must return nil only once every
// record is acknowledged; *kafka.Publisher, which waits for all in-sync
// replicas, is the production implementation.
type Publisher interface {
	Publish(ctx context.Context, msgs []kafka.Message) error
}

// Stats counts what a Tailer did since it was created.
type Stats struct {
	// Lines is the number of lines shipped and acknowledged, invalid JSON
	// lines included.
	Lines int64
	// Invalid is the number of acknowledged lines that looked like JSON
	// events but failed validation and were shipped raw.
	Invalid int64
	// Bytes is the number of bytes read from files, newlines and skipped
	// remainders of cut lines included. Bytes of a batch abandoned on
	// shutdown are counted although they will be read again.
	Bytes int64
	// Files is the number of files currently followed.
	Files int
	// PublishFailures is the number of failed publish attempts.
	PublishFailures int64
	// Pending is the number of lines held in memory awaiting
	// acknowledgement: at most one batch.
	Pending int
}

// fileID identifies a file independently of its name.
type fileID struct {
	Dev, Ino uint64
}

// String returns "<dev-hex>-<inode-hex>".
func (id fileID) String() string {
	return strconv.FormatUint(id.Dev, 16) + "-" + strconv.FormatUint(id.Ino, 16)
}

// cursor is a reading position in a file.
type cursor struct {
	// Gen is bumped each time the file is found truncated or replaced.
	Gen uint64
	// Offset is the next byte to read.
	Offset int64
	// Skip means Offset lies inside the remainder of a cut line.
	Skip bool
	// Head holds the first up to headSize bytes of the file as last seen.
	// It is replaced, never modified in place.
	Head []byte
}

// file is one followed file.
type file struct {
	id   fileID
	key  []byte // id.String(): the record key of its invalid JSON lines
	path string // where it was last seen
	f    *os.File

	acked cursor // acknowledged by Kafka: what the positions file records
	read  cursor // read into the current batch; equals acked between batches

	orphan  bool      // no longer matched by any glob
	touched bool      // read cursor moved in the current batch
	size    int64     // size at the last look
	changed time.Time // when size last changed
	lastErr string    // last read error logged, so each is logged once

	// Cache of the event ID prefix and what it was computed from.
	idPrefix  string
	idGen     uint64
	idHeadLen int
}

// Tailer follows files and ships their lines. Create it with New and start
// it with Run.
type Tailer struct {
	cfg        Config
	globs      []string
	pub        Publisher
	log        *slog.Logger
	source     string
	sourceKey  []byte
	sourceJSON []byte // source as a JSON string
	tracer     trace.Tracer

	mLines    metric.Int64Counter
	mInvalid  metric.Int64Counter
	mBytes    metric.Int64Counter
	mFailures metric.Int64Counter

	lines, invalid, bytes, failures atomic.Int64
	files, pending                  atomic.Int64

	// backoffMin and backoffMax bound the retry delay; tests shorten them.
	backoffMin, backoffMax time.Duration

	running atomic.Bool

	// Owned by the goroutine in Run.
	byID    map[fileID]*file
	order   []*file // round-robin order of reading
	next    int     // index in order to read first in the next batch
	saved   map[fileID]positionEntry
	dirty   bool // positions changed since the last save
	savedAt time.Time
	buf     []byte
	headBuf []byte
}

// New returns a Tailer that publishes through pub. A nil log means
// slog.Default().
func New(cfg Config, pub Publisher, log *slog.Logger) (*Tailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("creating tailer: nil Publisher")
	}
	if !identitySupported {
		return nil, errors.New("creating tailer: file identities (device, inode) are not available on this platform")
	}
	if log == nil {
		log = slog.Default()
	}
	globs := make([]string, len(cfg.Globs))
	for i, g := range cfg.Globs {
		abs, err := filepath.Abs(strings.TrimSpace(g))
		if err != nil {
			return nil, fmt.Errorf("resolving glob %q: %w", g, err)
		}
		globs[i] = abs
	}
	source := sanitizeSource(cfg.Source)
	sourceJSON, err := json.Marshal(source)
	if err != nil {
		return nil, fmt.Errorf("encoding source: %w", err)
	}
	t := &Tailer{
		cfg:        cfg,
		globs:      globs,
		pub:        pub,
		log:        log,
		source:     source,
		sourceKey:  []byte(source),
		sourceJSON: sourceJSON,
		tracer:     otel.Tracer(instrumentationName),
		backoffMin: backoffMin,
		backoffMax: backoffMax,
		byID:       map[fileID]*file{},
		buf:        make([]byte, max(minReadBuf, cfg.MaxLineBytes+1)),
		headBuf:    make([]byte, headSize),
	}
	if err := t.initMetrics(otel.Meter(instrumentationName)); err != nil {
		return nil, fmt.Errorf("creating tailer metrics: %w", err)
	}
	return t, nil
}

func (t *Tailer) initMetrics(m metric.Meter) error {
	var err error
	if t.mLines, err = m.Int64Counter("sluice.tail.lines",
		metric.WithUnit("{line}"),
		metric.WithDescription("Lines shipped to Kafka and acknowledged.")); err != nil {
		return err
	}
	if t.mInvalid, err = m.Int64Counter("sluice.tail.invalid_lines",
		metric.WithUnit("{line}"),
		metric.WithDescription("JSON lines that failed event validation and were shipped raw.")); err != nil {
		return err
	}
	if t.mBytes, err = m.Int64Counter("sluice.tail.bytes_read",
		metric.WithUnit("By"),
		metric.WithDescription("Bytes read from followed files.")); err != nil {
		return err
	}
	if t.mFailures, err = m.Int64Counter("sluice.tail.publish.failures",
		metric.WithUnit("{attempt}"),
		metric.WithDescription("Failed attempts to publish a batch of lines.")); err != nil {
		return err
	}
	return nil
}

// Stats returns the counters so far. It is safe to call concurrently with
// Run.
func (t *Tailer) Stats() Stats {
	return Stats{
		Lines:           t.lines.Load(),
		Invalid:         t.invalid.Load(),
		Bytes:           t.bytes.Load(),
		Files:           int(t.files.Load()),
		PublishFailures: t.failures.Load(),
		Pending:         int(t.pending.Load()),
	}
}

// Run follows the files until ctx ends, then saves the positions and
// returns nil. While Kafka refuses a batch, Run retries it with backoff and
// reads nothing more. It fails only if the positions file cannot be read
// or written at start, or written at the end. Run may be called once.
func (t *Tailer) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("running tailer: Run called more than once")
	}
	saved, err := loadPositions(t.cfg.PositionsFile)
	if err != nil {
		return err
	}
	t.saved = saved
	defer t.closeAll()
	t.log.Info("tailing files", "globs", t.globs, "positions", t.cfg.PositionsFile, "source", t.source)

	lastScan := time.Now()
	t.scan(lastScan)
	if err := t.save(); err != nil { // fail fast if positions cannot be kept
		return err
	}
	timer := time.NewTimer(t.cfg.PollInterval)
	defer timer.Stop()
	for ctx.Err() == nil {
		full, ok := t.cycle(ctx)
		if !ok {
			break
		}
		if t.dirty && time.Since(t.savedAt) >= saveInterval {
			if err := t.save(); err != nil {
				// Not fatal: the next save may succeed, and until then a
				// restart only ships some lines again.
				t.log.Error("saving tail positions failed", "err", err)
			}
		}
		if now := time.Now(); now.Sub(lastScan) >= t.cfg.ScanInterval {
			lastScan = now
			t.scan(now)
		}
		if full {
			continue
		}
		timer.Reset(t.cfg.PollInterval)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
	}
	if err := t.save(); err != nil {
		return err
	}
	t.log.Info("tailer stopped", "files", len(t.order), "lines", t.lines.Load())
	return nil
}

// closeAll closes every followed file.
func (t *Tailer) closeAll() {
	for _, f := range t.order {
		_ = f.f.Close()
	}
}

// save writes the acknowledged positions of all followed files.
func (t *Tailer) save() error {
	entries := make([]positionEntry, 0, len(t.order))
	for _, f := range t.order {
		entries = append(entries, entryOf(f))
	}
	slices.SortFunc(entries, func(a, b positionEntry) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		if a.Dev != b.Dev {
			return cmpUint(a.Dev, b.Dev)
		}
		return cmpUint(a.Inode, b.Inode)
	})
	if err := writePositions(t.cfg.PositionsFile, entries); err != nil {
		return err
	}
	t.dirty = false
	t.savedAt = time.Now()
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// batch is the one set of records read and not yet acknowledged.
type batch struct {
	msgs    []kafka.Message
	bytes   int
	invalid int
	touched []*file // files whose read cursor moved
	full    bool
}

// touch records that f's read cursor moved.
func (b *batch) touch(f *file) {
	if !f.touched {
		f.touched = true
		b.touched = append(b.touched, f)
	}
}

// cycle reads one batch, publishes it and commits the positions it
// reached. It reports whether the batch was full, so more may be ready,
// and returns ok false if ctx ended before the batch was acknowledged, in
// which case the batch is abandoned.
func (t *Tailer) cycle(ctx context.Context) (full, ok bool) {
	b := t.gather(time.Now())
	if n := len(b.msgs); n > 0 {
		t.pending.Store(int64(n))
		err := t.publish(ctx, b)
		t.pending.Store(0)
		if err != nil {
			for _, f := range b.touched {
				f.read, f.touched = f.acked, false
			}
			t.log.Info("abandoned unacknowledged batch on shutdown; it is read again on restart", "lines", n)
			return false, false
		}
		t.lines.Add(int64(n))
		t.invalid.Add(int64(b.invalid))
		t.mLines.Add(ctx, int64(n))
		if b.invalid > 0 {
			t.mInvalid.Add(ctx, int64(b.invalid))
		}
	}
	for _, f := range b.touched {
		f.acked, f.touched = f.read, false
		t.dirty = true
	}
	return b.full, true
}

// gather reads lines from the files in turn until the batch is full or
// nothing more is ready. Each batch starts with the file after the one that
// filled the previous one, so a busy file cannot starve the others.
func (t *Tailer) gather(now time.Time) *batch {
	b := &batch{}
	n := len(t.order)
	for i := 0; i < n && !b.full; i++ {
		k := (t.next + i) % n
		t.readFile(t.order[k], b, now)
		if b.full {
			t.next = (k + 1) % n
		}
	}
	return b
}

// publish sends the batch under a tail.batch span, retrying with backoff
// until Kafka acknowledges it or ctx ends.
func (t *Tailer) publish(ctx context.Context, b *batch) error {
	ctx, span := t.tracer.Start(ctx, "tail.batch", trace.WithAttributes(
		attribute.Int("sluice.tail.lines", len(b.msgs)),
		attribute.Int("sluice.tail.files", len(b.touched)),
	))
	defer span.End()
	headers := kafka.InjectHeaders(ctx, nil)
	for i := range b.msgs {
		b.msgs[i].Headers = headers
	}

	delay := t.backoffMin
	for attempt := 1; ; attempt++ {
		err := t.attempt(ctx, b.msgs)
		if err == nil {
			span.SetAttributes(attribute.Int("sluice.tail.attempts", attempt))
			return nil
		}
		span.RecordError(err)
		if ctx.Err() != nil {
			span.SetStatus(codes.Error, "abandoned on shutdown")
			return fmt.Errorf("publishing %d lines: %w", len(b.msgs), err)
		}
		t.failures.Add(1)
		t.mFailures.Add(ctx, 1)
		level := slog.LevelWarn
		if !errors.Is(err, kafka.ErrUnavailable) {
			level = slog.LevelError // retrying is unlikely to help, but dropping would lose data
		}
		t.log.Log(ctx, level, "publishing lines failed; retrying the same batch",
			"lines", len(b.msgs), "attempt", attempt, "retry_in", delay, "err", err)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			span.SetStatus(codes.Error, "abandoned on shutdown")
			return fmt.Errorf("publishing %d lines: %w", len(b.msgs), ctx.Err())
		case <-timer.C:
		}
		delay = min(2*delay, t.backoffMax)
	}
}

// attempt publishes msgs once. An attempt in flight when ctx ends may still
// complete within shutdownGrace.
func (t *Tailer) attempt(ctx context.Context, msgs []kafka.Message) error {
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		grace := time.NewTimer(shutdownGrace)
		select {
		case <-grace.C:
			cancel()
		case <-actx.Done():
			grace.Stop()
		}
	})
	defer stop()
	return t.pub.Publish(actx, msgs)
}
