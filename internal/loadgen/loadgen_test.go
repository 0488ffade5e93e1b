package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/sluicedata/sluice/schemas"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"zero config", func(c *Config) { *c = Config{} }, ""},
		{"negative users", func(c *Config) { c.Users = -1 }, "loadgen: Users: must be >= 0"},
		{"negative items", func(c *Config) { c.Items = -1 }, "loadgen: Items: must be >= 0"},
		{"negative count", func(c *Config) { c.Count = -1 }, "loadgen: Count: must be >= 0"},
		{"negative batch", func(c *Config) { c.BatchSize = -5 }, "loadgen: BatchSize: must be >= 0"},
		{"share ratio above 1", func(c *Config) { c.ShareRatio = 1.5 }, "loadgen: ShareRatio: must be between 0 and 1"},
		{"NaN duplicate ratio", func(c *Config) { c.DuplicateRatio = math.NaN() }, "loadgen: DuplicateRatio: must be between 0 and 1"},
		{"negative bad ratio", func(c *Config) { c.BadRatio = -0.1 }, "loadgen: BadRatio: must be between 0 and 1"},
		{"ratios above 1 together", func(c *Config) { c.BadRatio, c.DuplicateRatio = 0.6, 0.5 }, "loadgen: BadRatio: DuplicateRatio+BadRatio must be <= 1"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "loadgen: Rate: must be >= 0"},
		{"infinite rate", func(c *Config) { c.Rate = math.Inf(1) }, "loadgen: Rate: must be >= 0"},
		{"negative spread", func(c *Config) { c.Spread = -time.Second }, "loadgen: Spread: must be >= 0"},
		{"empty city", func(c *Config) { c.Cities = []string{"shanghai", ""} }, "loadgen: Cities[1]: must not be empty"},
		{"control char in city", func(c *Config) { c.Cities = []string{"a\nb"} }, "loadgen: Cities[0]: city: must not contain control characters"},
		{"run id charset", func(c *Config) { c.RunID = "run 1" }, "loadgen: RunID: must contain only [A-Za-z0-9._:-]"},
		{"run id length", func(c *Config) { c.RunID = strings.Repeat("r", 41) }, "loadgen: RunID: must be at most 40 characters"},
		{"run id ok", func(c *Config) { c.RunID = strings.Repeat("r", 40) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if got := errText(err); got != tt.want {
				t.Fatalf("Validate() = %q, want %q", got, tt.want)
			}
			if _, err := NewGenerator(cfg); errText(err) != tt.want {
				t.Fatalf("NewGenerator error = %v, want %q", err, tt.want)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// recordSink keeps copies of what it is sent and accepts what
// schemas.DecodeEvent accepts.
type recordSink struct {
	mu      sync.Mutex
	items   []Item
	batches []int
	err     error
}

func (s *recordSink) Send(_ context.Context, items []Item) (accepted, rejected int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, 0, s.err
	}
	s.items = append(s.items, items...)
	s.batches = append(s.batches, len(items))
	for _, it := range items {
		if _, err := schemas.DecodeEvent(it.Payload, time.Now()); err == nil {
			accepted++
		} else {
			rejected++
		}
	}
	return accepted, rejected, nil
}

func TestRunItemsMatchSchema(t *testing.T) {
	cfg := Config{Seed: 7, DuplicateRatio: 0.1, BadRatio: 0.1, Count: 10000, BatchSize: 300, Spread: time.Hour, RunID: "test-run"}
	sink := &recordSink{}
	stats, err := Run(context.Background(), cfg, sink)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(sink.items) != cfg.Count {
		t.Fatalf("sink got %d items, want %d", len(sink.items), cfg.Count)
	}

	now := time.Now()
	originals := map[string][]byte{} // event_id -> payload of valid originals
	rules := map[string]int{}
	var want Stats
	want.ValidByType = map[string]int{}
	channels := map[string]int{}
	for i, it := range sink.items {
		ev, err := schemas.DecodeEvent(it.Payload, now)
		if (err == nil) != it.Valid {
			t.Fatalf("item %d: Valid=%v but DecodeEvent error %v: %s", i, it.Valid, err, it.Payload)
		}
		if it.Decodable != json.Valid(it.Payload) {
			t.Fatalf("item %d: Decodable=%v for %s", i, it.Decodable, it.Payload)
		}
		if bytes.IndexByte(it.Payload, '\n') >= 0 || it.Key == "" {
			t.Fatalf("item %d: newline in payload or empty key: %+v", i, it)
		}
		switch {
		case it.Duplicate:
			want.Duplicates++
			orig, ok := originals[it.EventID]
			if !ok || !bytes.Equal(orig, it.Payload) || !it.Valid {
				t.Fatalf("item %d: duplicate %s does not repeat an earlier valid item", i, it.Payload)
			}
		case it.Valid:
			want.Valid++
			want.ValidByType[it.Type]++
			channels[ev.Channel]++
			if _, dup := originals[it.EventID]; dup {
				t.Fatalf("item %d: event_id %s reused", i, it.EventID)
			}
			originals[it.EventID] = it.Payload
			if ev.EventID != it.EventID || ev.Type != it.Type || ev.PartitionKey() != it.Key {
				t.Fatalf("item %d: metadata %+v does not match event %+v", i, it, ev)
			}
			if len(it.Payload) < 120 || len(it.Payload) > 300 {
				t.Errorf("item %d: payload of %d bytes: %s", i, len(it.Payload), it.Payload)
			}
			if age := now.Sub(ev.OccurredAt); age < 0 || age > cfg.Spread+time.Minute {
				t.Errorf("item %d: occurred_at %v outside the spread", i, ev.OccurredAt)
			}
		default:
			want.Invalid++
			var verr *schemas.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("item %d: error %v is not a ValidationError", i, err)
			}
			rule := verr.Error()
			if verr.Field == "" {
				rule, _, _ = strings.Cut(rule, ":")
			}
			rules[rule]++
		}
	}
	want.Emitted = want.Valid + want.Duplicates + want.Invalid
	want.Accepted, want.Rejected = want.Valid+want.Duplicates, want.Invalid
	if stats.Emitted != cfg.Count || stats.Emitted != stats.Valid+stats.Duplicates+stats.Invalid {
		t.Errorf("stats %+v: Emitted must be Count and Valid+Duplicates+Invalid", stats)
	}
	if stats.Valid != want.Valid || stats.Duplicates != want.Duplicates || stats.Invalid != want.Invalid ||
		stats.Accepted != want.Accepted || stats.Rejected != want.Rejected {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
	sum := 0
	for typ, n := range stats.ValidByType {
		sum += n
		if want.ValidByType[typ] != n {
			t.Errorf("ValidByType[%s] = %d, want %d", typ, n, want.ValidByType[typ])
		}
	}
	if sum != stats.Valid {
		t.Errorf("ValidByType sums to %d, want Valid %d", sum, stats.Valid)
	}

	near := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.3f, want %.2f±%.2f", what, got, want, tol)
		}
	}
	near("duplicate fraction", float64(stats.Duplicates)/float64(stats.Emitted), 0.1, 0.02)
	near("invalid fraction", float64(stats.Invalid)/float64(stats.Emitted), 0.1, 0.02)
	near("share fraction", float64(stats.ValidByType["share"])/float64(stats.Valid), 0.6, 0.03)
	near("view fraction", float64(stats.ValidByType["view"])/float64(stats.Valid), 0.3, 0.03)
	near("wechat fraction", float64(channels["wechat"])/float64(stats.Valid), 0.5, 0.03)
	near("qq fraction", float64(channels["qq"])/float64(stats.Valid), 0.35, 0.03)

	for _, rule := range []string{
		"user_id: required",
		"event_id: must be 1-64 characters of [A-Za-z0-9._:-]",
		"referrer: unknown field",
		"occurred_at: must be an RFC 3339 timestamp with zone",
		"item_id: required for type share",
		"occurred_at: must be a string",
		"user_id: must be a string",
		"body", // garbage
	} {
		if rules[rule] == 0 {
			t.Errorf("no bad item broke %q; got %v", rule, rules)
		}
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	cfg := Config{Seed: 42, DuplicateRatio: 0.2, BadRatio: 0.2, RunID: "det"}
	a, err := NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for i := range 2000 {
		x, y := a.Next(now), b.Next(now)
		if !bytes.Equal(x.Payload, y.Payload) || x.Valid != y.Valid || x.Duplicate != y.Duplicate {
			t.Fatalf("item %d differs:\n%s\n%s", i, x.Payload, y.Payload)
		}
	}
	c, err := NewGenerator(Config{Seed: 43, RunID: "det"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Next(now).Payload, c.Next(now).Payload) {
		t.Error("different seeds gave the same item")
	}
}

func TestZipfSkew(t *testing.T) {
	cfg := Config{Seed: 3, ShareRatio: 1, Items: 2000}
	g, err := NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	shares := map[string]int{}
	now := time.Now()
	for range 20000 {
		it := g.Next(now)
		if it.Type != "share" {
			t.Fatalf("type %s with ShareRatio 1", it.Type)
		}
		shares[it.Key]++
	}
	counts := make([]int, 0, cfg.Items)
	for _, n := range shares {
		counts = append(counts, n)
	}
	for len(counts) < cfg.Items {
		counts = append(counts, 0) // never-shared restaurants
	}
	slices.Sort(counts)
	top, median := counts[len(counts)-1], counts[len(counts)/2]
	if top < 20*max(median, 1) {
		t.Errorf("top restaurant has %d shares, median %d: want a Zipf skew of at least 20x", top, median)
	}
	t.Logf("top %d, median %d, distinct shared %d", top, median, len(shares))
}

// fakeCollector answers like the collector: it validates each NDJSON line
// and optionally answers the first request with 503.
type fakeCollector struct {
	mu           sync.Mutex
	requests     int
	lines        int
	unavailable  int // requests to answer with 503 first
	retryAfter   string
	sawAuth      string
	sawType      string
	firstAttempt time.Time
	retried      time.Time
}

func (c *fakeCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	c.sawAuth, c.sawType = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
	if r.Method != http.MethodPost {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	if c.unavailable > 0 {
		c.unavailable--
		c.firstAttempt = time.Now()
		w.Header().Set("Retry-After", c.retryAfter)
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	if c.retried.IsZero() {
		c.retried = time.Now()
	}
	type rejection struct {
		Index  int    `json:"index"`
		Reason string `json:"reason"`
	}
	answer := struct {
		Accepted int         `json:"accepted"`
		Rejected []rejection `json:"rejected"`
	}{Rejected: []rejection{}}
	sc := bufio.NewScanner(r.Body)
	for i := 0; sc.Scan(); i++ {
		c.lines++
		if _, err := schemas.DecodeEvent(sc.Bytes(), time.Now()); err != nil {
			answer.Rejected = append(answer.Rejected, rejection{i, err.Error()})
			continue
		}
		answer.Accepted++
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer)
}

func TestHTTPSinkRun(t *testing.T) {
	collector := &fakeCollector{unavailable: 1, retryAfter: "1"}
	srv := httptest.NewServer(collector)
	defer srv.Close()
	sink := &HTTPSink{URL: srv.URL + "/v1/events", Token: "s3cret"}
	cfg := Config{Seed: 9, DuplicateRatio: 0.05, BadRatio: 0.1, Count: 1200, BatchSize: 500}
	stats, err := Run(context.Background(), cfg, sink)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if stats.Emitted != cfg.Count || collector.lines != cfg.Count {
		t.Errorf("emitted %d, collector saw %d lines, want %d", stats.Emitted, collector.lines, cfg.Count)
	}
	if stats.Accepted != stats.Valid+stats.Duplicates || stats.Rejected != stats.Invalid {
		t.Errorf("stats %+v: want Accepted = Valid+Duplicates and Rejected = Invalid", stats)
	}
	if collector.requests != 4 { // 503, then 500+500+200
		t.Errorf("collector got %d requests, want 4", collector.requests)
	}
	if wait := collector.retried.Sub(collector.firstAttempt); wait < 900*time.Millisecond {
		t.Errorf("retried after %v, want Retry-After's 1s", wait)
	}
	if collector.sawAuth != "Bearer s3cret" || collector.sawType != "application/x-ndjson" {
		t.Errorf("headers: Authorization %q, Content-Type %q", collector.sawAuth, collector.sawType)
	}
}

func TestHTTPSinkErrors(t *testing.T) {
	items := []Item{{Payload: []byte(`{"a":1}`)}}
	t.Run("non-2xx", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad token", http.StatusUnauthorized)
		}))
		defer srv.Close()
		_, _, err := (&HTTPSink{URL: srv.URL}).Send(context.Background(), items)
		if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "bad token") {
			t.Fatalf("Send error = %v, want status and body", err)
		}
	})
	t.Run("503 until ctx done", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, _, err := (&HTTPSink{URL: srv.URL}).Send(ctx, items)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("Send = %v after %v, want the deadline error promptly", err, time.Since(start))
		}
	})
	t.Run("newline in payload", func(t *testing.T) {
		_, _, err := (&HTTPSink{URL: "http://127.0.0.1:1"}).Send(context.Background(), []Item{{Payload: []byte("a\nb")}})
		if err == nil {
			t.Fatal("Send accepted a payload with a newline")
		}
	})
	t.Run("bad reply", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok"))
		}))
		defer srv.Close()
		if _, _, err := (&HTTPSink{URL: srv.URL}).Send(context.Background(), items); err == nil {
			t.Fatal("Send accepted a non-JSON reply")
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"3", 3 * time.Second},
		{"0", 0},
		{"-4", 0},
		{"", defaultRetryAfter},
		{"soon", defaultRetryAfter},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// fakeProducer records SendMessages calls; other methods are not used.
type fakeProducer struct {
	sarama.SyncProducer
	msgs []*sarama.ProducerMessage
	err  error
}

func (p *fakeProducer) SendMessages(msgs []*sarama.ProducerMessage) error {
	p.msgs = append(p.msgs, msgs...)
	return p.err
}

func TestKafkaSink(t *testing.T) {
	g, err := NewGenerator(Config{Seed: 5, BadRatio: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]Item, 50)
	for i := range items {
		items[i] = g.Next(time.Now())
	}
	producer := &fakeProducer{}
	sink := &KafkaSink{Producer: producer, Topic: "events.v1"}
	accepted, rejected, err := sink.Send(context.Background(), items)
	if err != nil || accepted != len(items) || rejected != 0 {
		t.Fatalf("Send = %d, %d, %v; want %d, 0, nil", accepted, rejected, err, len(items))
	}
	for i, m := range producer.msgs {
		key, _ := m.Key.Encode()
		value, _ := m.Value.Encode()
		if m.Topic != "events.v1" || string(key) != items[i].Key || !bytes.Equal(value, items[i].Payload) {
			t.Fatalf("message %d = %s %s %s, want item %+v", i, m.Topic, key, value, items[i])
		}
	}

	producer.err = sarama.ProducerErrors{{Msg: producer.msgs[0], Err: errors.New("broker down")}}
	accepted, _, err = sink.Send(context.Background(), items)
	if err == nil || accepted != len(items)-1 {
		t.Fatalf("Send with one failure = %d, %v; want %d and an error", accepted, err, len(items)-1)
	}
}

func TestRunPacing(t *testing.T) {
	sink := &recordSink{}
	cfg := Config{Rate: 200, Count: 60, BatchSize: 25}
	start := time.Now()
	stats, err := Run(context.Background(), cfg, sink)
	elapsed := time.Since(start)
	if err != nil || stats.Emitted != cfg.Count {
		t.Fatalf("Run = %+v, %v", stats, err)
	}
	// 59 items after the first, at 200/s, take about 0.3s.
	if elapsed < 250*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("60 items at 200/s took %v, want about 0.3s", elapsed)
	}
	if sum := sumInts(sink.batches); sum != cfg.Count || slices.Max(sink.batches) > cfg.BatchSize {
		t.Errorf("batches %v: want %d items in batches of at most %d", sink.batches, cfg.Count, cfg.BatchSize)
	}
	t.Logf("elapsed %v, batches %v", elapsed, sink.batches)
}

func sumInts(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func TestRunStops(t *testing.T) {
	t.Run("ctx done", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		sink := &recordSink{}
		stats, err := Run(ctx, Config{Rate: 1000, BatchSize: 50}, sink)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if stats.Emitted == 0 || stats.Emitted != len(sink.items) {
			t.Fatalf("emitted %d, sink got %d", stats.Emitted, len(sink.items))
		}
	})
	t.Run("sink error", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := Run(context.Background(), Config{Count: 10}, &recordSink{err: boom})
		if !errors.Is(err, boom) {
			t.Fatalf("Run error = %v, want boom", err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		if _, err := Run(context.Background(), Config{Rate: -1}, &recordSink{}); err == nil {
			t.Fatal("Run accepted a bad config")
		}
	})
}
