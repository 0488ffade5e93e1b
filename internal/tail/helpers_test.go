package tail

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/schemas"
)

// fakePub records what it is asked to publish and can be made to fail.
type fakePub struct {
	mu        sync.Mutex
	delivered []kafka.Message   // acknowledged, plus failed batches with deliverOnFail
	attempts  [][]kafka.Message // every call
	fail      bool              // fail every call
	failN     int               // fail this many more calls
	// deliverOnFail makes failing calls record the batch as delivered,
	// like a publish that reached Kafka but whose answer was lost.
	deliverOnFail bool
	successes     int
	// onSuccess, if set, is called with the number of successful calls.
	onSuccess func(n int)
}

func (p *fakePub) Publish(_ context.Context, msgs []kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attempts = append(p.attempts, msgs)
	if p.fail || p.failN > 0 {
		if p.failN > 0 {
			p.failN--
		}
		if p.deliverOnFail {
			p.delivered = append(p.delivered, msgs...)
		}
		return fmt.Errorf("fake broker down: %w", kafka.ErrUnavailable)
	}
	p.delivered = append(p.delivered, msgs...)
	p.successes++
	if p.onSuccess != nil {
		p.onSuccess(p.successes)
	}
	return nil
}

func (p *fakePub) setFail(fail bool) {
	p.mu.Lock()
	p.fail = fail
	p.mu.Unlock()
}

func (p *fakePub) messages() []kafka.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]kafka.Message(nil), p.delivered...)
}

func (p *fakePub) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.delivered)
}

func (p *fakePub) attemptCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.attempts)
}

func (p *fakePub) attemptList() [][]kafka.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]kafka.Message(nil), p.attempts...)
}

// testLogger logs to the test's output (shown with -v or on failure).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig returns a fast-polling Config for globs, keeping positions in
// posFile.
func testConfig(posFile string, globs ...string) Config {
	cfg := DefaultConfig()
	cfg.Globs = globs
	cfg.PositionsFile = posFile
	cfg.Source = "test-host"
	cfg.ScanInterval = 20 * time.Millisecond
	cfg.PollInterval = 5 * time.Millisecond
	cfg.RotateWait = 300 * time.Millisecond
	return cfg
}

// runner is a Tailer running in the background.
type runner struct {
	tl     *Tailer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// start runs a Tailer with cfg and pub until stop or the end of the test.
func start(t *testing.T, cfg Config, pub Publisher) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	return startCtx(t, ctx, cancel, cfg, pub)
}

func startCtx(t *testing.T, ctx context.Context, cancel context.CancelFunc, cfg Config, pub Publisher) *runner {
	t.Helper()
	tl, err := New(cfg, pub, testLogger(t))
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	tl.backoffMin, tl.backoffMax = 5*time.Millisecond, 20*time.Millisecond
	r := &runner{tl: tl, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- tl.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the Tailer and fails the test unless Run returns nil soon.
func (r *runner) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(10 * time.Second):
			r.err = fmt.Errorf("Run did not return within 10s of cancel")
		}
	})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
}

// waitFor polls cond until it holds or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitCount waits until pub holds n records, then checks that no more
// arrive for a while.
func waitCount(t *testing.T, pub *fakePub, n int) []kafka.Message {
	t.Helper()
	waitFor(t, 5*time.Second, fmt.Sprintf("%d records", n), func() bool { return pub.count() >= n })
	time.Sleep(30 * time.Millisecond)
	msgs := pub.messages()
	if len(msgs) != n {
		t.Fatalf("got %d records, want %d", len(msgs), n)
	}
	return msgs
}

// appendTo appends s to the file at path, creating it if needed.
func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// numbered returns lines "<prefix> 0000\n" ... for i in [from, to).
func numbered(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s %04d\n", prefix, i)
	}
	return b.String()
}

// logLine is a decoded type=log record.
type logLine struct {
	key     string
	eventID string
	ev      schemas.Event
	attrs   logAttrs
}

// decodeLogs decodes records that must all be valid type=log events.
func decodeLogs(t *testing.T, msgs []kafka.Message) []logLine {
	t.Helper()
	out := make([]logLine, 0, len(msgs))
	for _, m := range msgs {
		ev, err := schemas.DecodeEvent(m.Value, time.Now())
		if err != nil {
			t.Fatalf("record %s is not a valid event: %v", m.Value, err)
		}
		if ev.Type != "log" {
			t.Fatalf("record %s: type %q, want log", m.Value, ev.Type)
		}
		var a logAttrs
		dec := json.NewDecoder(strings.NewReader(string(ev.Attrs)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("record %s: attrs: %v", m.Value, err)
		}
		out = append(out, logLine{key: string(m.Key), eventID: ev.EventID, ev: ev, attrs: a})
	}
	return out
}

// checkExactlyOnce checks that lines carry each of want exactly once, with
// distinct event IDs.
func checkExactlyOnce(t *testing.T, lines []logLine, want string) {
	t.Helper()
	wantSet := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(want, "\n"), "\n") {
		wantSet[l]++
	}
	got := map[string]int{}
	ids := map[string]bool{}
	for _, l := range lines {
		got[l.attrs.Line]++
		if ids[l.eventID] {
			t.Errorf("event_id %s shipped twice", l.eventID)
		}
		ids[l.eventID] = true
	}
	for l, n := range wantSet {
		if got[l] != n {
			t.Errorf("line %q shipped %d times, want %d", l, got[l], n)
		}
	}
	for l := range got {
		if wantSet[l] == 0 {
			t.Errorf("unexpected line %q", l)
		}
	}
}

// readPositions reads the positions file and fails the test on error.
func readPositions(t *testing.T, path string) map[string]positionEntry {
	t.Helper()
	m, err := loadPositions(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]positionEntry{}
	for _, e := range m {
		out[filepath.Base(e.Path)] = e
	}
	return out
}
