package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicedata/sluice/schemas"
)

// fakePublisher records what it is asked to publish.
type fakePublisher struct {
	mu       sync.Mutex
	batches  [][]Message
	err      error
	readyErr error
}

func (f *fakePublisher) Publish(_ context.Context, msgs []Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.batches = append(f.batches, msgs)
	return nil
}

func (f *fakePublisher) Ready(context.Context) error { return f.readyErr }

func (f *fakePublisher) messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Message
	for _, b := range f.batches {
		out = append(out, b...)
	}
	return out
}

var occurred = time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)

// eventJSON returns a valid event; with item it carries an item_id.
func eventJSON(i int, item bool) string {
	if item {
		return fmt.Sprintf(`{"event_id":"evt-%d","type":"view","occurred_at":%q,"user_id":"u-%d","item_id":"item-%d","city":"Zürich","attrs":{"n": %d}}`, i, occurred, i, i, i)
	}
	return fmt.Sprintf(`{"event_id":"evt-%d","type":"signup","occurred_at":%q,"user_id":"u-%d","channel":"web"}`, i, occurred, i)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestServer(t *testing.T, pub Publisher, mutate func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, pub, discardLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding response %q: %v", r.body, err)
	}
}

func do(t *testing.T, s *Server, method, path, contentType, body string, hdr ...string) reply {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return reply{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func post(t *testing.T, s *Server, contentType, body string, hdr ...string) reply {
	t.Helper()
	return do(t, s, http.MethodPost, "/v1/events", contentType, body, hdr...)
}

func wantStatus(t *testing.T, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
}

func wantError(t *testing.T, r reply, status int) string {
	t.Helper()
	wantStatus(t, r, status)
	var body struct {
		Error *string `json:"error"`
	}
	r.decode(t, &body)
	if body.Error == nil || *body.Error == "" {
		t.Fatalf("status %d without an error message: %s", status, r.body)
	}
	return *body.Error
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate: %v", err)
	}
	for field, mutate := range map[string]func(*Config){
		"Addr":            func(c *Config) { c.Addr = "" },
		"MaxBodyBytes":    func(c *Config) { c.MaxBodyBytes = 0 },
		"MaxEvents":       func(c *Config) { c.MaxEvents = -1 },
		"RetryAfter":      func(c *Config) { c.RetryAfter = 0 },
		"ShutdownTimeout": func(c *Config) { c.ShutdownTimeout = 0 },
	} {
		c := DefaultConfig()
		mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate with bad %s = %v, want error naming it", field, err)
		}
		if _, err := New(c, &fakePublisher{}, nil); err == nil {
			t.Errorf("New accepted bad %s", field)
		}
	}
	if _, err := New(DefaultConfig(), nil, nil); err == nil {
		t.Error("New accepted a nil Publisher")
	}
}

func TestArrayBody(t *testing.T) {
	pub := &fakePublisher{}
	s := newTestServer(t, pub, nil)
	body := "[\n " + eventJSON(0, true) + ",\n" + eventJSON(1, false) + "," + eventJSON(2, true) + "]"
	r := post(t, s, "application/json", body)
	wantStatus(t, r, http.StatusOK)
	if got, want := string(r.body), `{"accepted":3,"rejected":[]}`+"\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}

	msgs := pub.messages()
	if len(msgs) != 3 {
		t.Fatalf("published %d messages, want 3", len(msgs))
	}
	wantKeys := []string{"item-0", "u-1", "item-2"}
	for i, m := range msgs {
		if string(m.Key) != wantKeys[i] {
			t.Errorf("message %d: key %q, want %q", i, m.Key, wantKeys[i])
		}
		// The value is the event re-encoded compactly.
		ev, err := schemas.DecodeEvent(m.Value, time.Now())
		if err != nil {
			t.Fatalf("message %d: value %s does not decode: %v", i, m.Value, err)
		}
		want, _ := json.Marshal(&ev)
		if !bytes.Equal(m.Value, want) {
			t.Errorf("message %d: value %s, want compact %s", i, m.Value, want)
		}
		if ev.EventID != fmt.Sprintf("evt-%d", i) {
			t.Errorf("message %d: event_id %q", i, ev.EventID)
		}
	}
	if v := string(msgs[0].Value); !strings.Contains(v, `"attrs":{"n":0}`) || !strings.Contains(v, `"city":"Zürich"`) {
		t.Errorf("value not compact or lost fields: %s", v)
	}
}

func TestNDJSONBody(t *testing.T) {
	lines := eventJSON(0, true) + "\r\n\n   \n" + eventJSON(1, false) + "\n" + eventJSON(2, true) // no final newline
	for _, ct := range []string{"application/x-ndjson", "application/x-ndjson; charset=utf-8", "application/json", ""} {
		t.Run(ct, func(t *testing.T) {
			pub := &fakePublisher{}
			s := newTestServer(t, pub, nil)
			r := post(t, s, ct, lines)
			wantStatus(t, r, http.StatusOK)
			var resp Response
			r.decode(t, &resp)
			if resp.Accepted != 3 || len(resp.Rejected) != 0 {
				t.Fatalf("response %s, want 3 accepted", r.body)
			}
			if n := len(pub.messages()); n != 3 {
				t.Fatalf("published %d, want 3", n)
			}
		})
	}
}

func TestSingleObjectIsOneLineNDJSON(t *testing.T) {
	pub := &fakePublisher{}
	s := newTestServer(t, pub, nil)
	r := post(t, s, "application/json", "\n  "+eventJSON(7, true)+"\n")
	wantStatus(t, r, http.StatusOK)
	if len(pub.messages()) != 1 {
		t.Fatalf("published %d, want 1", len(pub.messages()))
	}
}

func TestMixedArray(t *testing.T) {
	pub := &fakePublisher{}
	s := newTestServer(t, pub, nil)
	noUser := fmt.Sprintf(`{"event_id":"evt-x","type":"signup","occurred_at":%q}`, occurred)
	future := fmt.Sprintf(`{"event_id":"evt-f","type":"signup","occurred_at":%q,"user_id":"u"}`,
		time.Now().Add(72*time.Hour).UTC().Format(time.RFC3339))
	body := "[" + strings.Join([]string{
		eventJSON(0, true), // 0 ok
		`42`,               // 1 not an object
		eventJSON(2, false),
		noUser,                          // 3
		`{"event_id":"e","extra":true}`, // 4 unknown field
		future,                          // 5
		eventJSON(6, true),
	}, ",") + "]"
	r := post(t, s, "application/json", body)
	wantStatus(t, r, http.StatusOK)
	var resp struct {
		Accepted int                          `json:"accepted"`
		Rejected []map[string]json.RawMessage `json:"rejected"`
	}
	r.decode(t, &resp)
	if resp.Accepted != 3 {
		t.Errorf("accepted %d, want 3", resp.Accepted)
	}
	wantIdx := []int{1, 3, 4, 5}
	if len(resp.Rejected) != len(wantIdx) {
		t.Fatalf("rejected %s, want indexes %v", r.body, wantIdx)
	}
	for i, rej := range resp.Rejected {
		if got := string(rej["index"]); got != fmt.Sprint(wantIdx[i]) {
			t.Errorf("rejection %d: index %s, want %d", i, got, wantIdx[i])
		}
		if _, ok := rej["line"]; ok {
			t.Errorf("rejection %d of an array body has a line", i)
		}
	}
	if got := string(resp.Rejected[1]["reason"]); got != `"user_id: required"` {
		t.Errorf("reason for index 3 = %s, want user_id: required", got)
	}
	if got := string(resp.Rejected[3]["reason"]); !strings.HasPrefix(got, `"occurred_at:`) {
		t.Errorf("reason for index 5 = %s, want an occurred_at rule", got)
	}
	msgs := pub.messages()
	if len(msgs) != 3 || string(msgs[0].Key) != "item-0" || string(msgs[1].Key) != "u-2" || string(msgs[2].Key) != "item-6" {
		t.Errorf("published %d messages with unexpected keys", len(msgs))
	}
}

func TestMixedNDJSON(t *testing.T) {
	pub := &fakePublisher{}
	s := newTestServer(t, pub, nil)
	noUser := fmt.Sprintf(`{"event_id":"evt-x","type":"signup","occurred_at":%q}`, occurred)
	body := strings.Join([]string{
		eventJSON(0, true), // line 1, index 0
		"",                 // line 2
		"this is not json", // line 3, index 1
		noUser,             // line 4, index 2
		"   ",              // line 5
		`{"event_id":`,     // line 6, index 3: truncated
		eventJSON(4, false),
		"",
	}, "\n")
	r := post(t, s, "application/x-ndjson", body)
	wantStatus(t, r, http.StatusOK)
	var resp Response
	r.decode(t, &resp)
	want := []Rejection{
		{Index: 1, Line: 3},
		{Index: 2, Line: 4, Reason: "user_id: required"},
		{Index: 3, Line: 6},
	}
	if resp.Accepted != 2 || len(resp.Rejected) != len(want) {
		t.Fatalf("response %s", r.body)
	}
	for i, w := range want {
		got := resp.Rejected[i]
		if got.Index != w.Index || got.Line != w.Line || got.Reason == "" || (w.Reason != "" && got.Reason != w.Reason) {
			t.Errorf("rejection %d = %+v, want %+v", i, got, w)
		}
	}
	if n := len(pub.messages()); n != 2 {
		t.Errorf("published %d, want 2", n)
	}
}

func TestAllRejectedPublishesNothing(t *testing.T) {
	pub := &fakePublisher{err: errors.New("must not be called")}
	s := newTestServer(t, pub, nil)
	r := post(t, s, "application/json", `[{}, 1]`)
	wantStatus(t, r, http.StatusOK)
	var resp Response
	r.decode(t, &resp)
	if resp.Accepted != 0 || len(resp.Rejected) != 2 {
		t.Errorf("response %s", r.body)
	}
}

func TestBadRequest(t *testing.T) {
	s := newTestServer(t, &fakePublisher{}, nil)
	for name, tc := range map[string]struct{ ct, body string }{
		"empty":              {"application/json", ""},
		"whitespace":         {"application/json", " \n\t "},
		"empty array":        {"application/json", " [ ] "},
		"blank ndjson":       {"application/x-ndjson", "\n\n  \n"},
		"truncated array":    {"application/json", `[` + eventJSON(0, true)},
		"invalid element":    {"application/json", `[` + eventJSON(0, true) + `, {oops}]`},
		"trailing garbage":   {"application/json", `[` + eventJSON(0, true) + `] x`},
		"array then object":  {"", `[1] {}`},
		"array of array bad": {"application/json", `[[1,]]`},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, post(t, s, tc.ct, tc.body), http.StatusBadRequest)
		})
	}
}

func TestBadArrayNamesTheOffset(t *testing.T) {
	pub := &fakePublisher{}
	s := newTestServer(t, pub, nil)
	ev := eventJSON(0, true)
	body := "[" + ev + ", {oops}]"
	msg := wantError(t, post(t, s, "application/json", body), http.StatusBadRequest)
	want := fmt.Sprintf("body is not a valid JSON array: invalid JSON: unexpected 'o' at offset %d", len(ev)+4)
	if msg != want {
		t.Errorf("error %q, want %q", msg, want)
	}
	if n := len(pub.messages()); n != 0 {
		t.Errorf("%d events published from a rejected body", n)
	}
}

func TestTooLarge(t *testing.T) {
	pub := &fakePublisher{}
	s := newTestServer(t, pub, func(c *Config) { c.MaxBodyBytes = 2048; c.MaxEvents = 3 })
	big := "[" + strings.Repeat(eventJSON(0, true)+",", 20) + eventJSON(1, true) + "]"

	// Declared length over the limit.
	wantError(t, post(t, s, "application/json", big), http.StatusRequestEntityTooLarge)

	// Unknown length (chunked): the limit is enforced while reading.
	req := httptest.NewRequest(http.MethodPost, "/v1/events", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	wantError(t, reply{rec.Code, rec.Header(), rec.Body.Bytes()}, http.StatusRequestEntityTooLarge)

	// Too many events, as an array and as NDJSON (blank lines do not count).
	four := []string{`{}`, `{}`, `{}`, `{}`}
	wantError(t, post(t, s, "application/json", "["+strings.Join(four, ",")+"]"), http.StatusRequestEntityTooLarge)
	wantError(t, post(t, s, "application/x-ndjson", strings.Join(four, "\n")), http.StatusRequestEntityTooLarge)
	three := strings.Join([]string{eventJSON(1, true), "", eventJSON(2, true), "", eventJSON(3, true), ""}, "\n")
	wantStatus(t, post(t, s, "application/x-ndjson", three), http.StatusOK)
	if len(pub.messages()) != 3 {
		t.Errorf("published %d, want 3", len(pub.messages()))
	}
}

func TestAuth(t *testing.T) {
	pub := &fakePublisher{}
	s := newTestServer(t, pub, func(c *Config) { c.Token = "s3cret" })
	body := eventJSON(0, true)
	for name, auth := range map[string]string{
		"missing":      "",
		"wrong":        "Bearer nope",
		"prefix":       "Bearer s3cre",
		"longer":       "Bearer s3cret ",
		"basic":        "Basic czNjcmV0",
		"no scheme":    "s3cret",
		"empty bearer": "Bearer ",
	} {
		t.Run(name, func(t *testing.T) {
			var hdr []string
			if auth != "" {
				hdr = []string{"Authorization", auth}
			}
			r := post(t, s, "", body, hdr...)
			wantError(t, r, http.StatusUnauthorized)
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	if n := len(pub.messages()); n != 0 {
		t.Fatalf("unauthorized requests published %d messages", n)
	}
	wantStatus(t, post(t, s, "", body, "Authorization", "Bearer s3cret"), http.StatusOK)
	wantStatus(t, post(t, s, "", body, "Authorization", "bearer s3cret"), http.StatusOK)
	// Health endpoints need no token.
	wantStatus(t, do(t, s, http.MethodGet, "/healthz", "", ""), http.StatusOK)
}

func TestPublishFailure(t *testing.T) {
	pub := &fakePublisher{err: errors.New("kafka unavailable: brokers down")}
	s := newTestServer(t, pub, nil)
	r := post(t, s, "application/json", "["+eventJSON(0, true)+", 1,"+eventJSON(1, false)+"]")
	wantError(t, r, http.StatusServiceUnavailable)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	var resp map[string]json.RawMessage
	r.decode(t, &resp)
	if got := string(resp["accepted"]); got != "0" {
		t.Errorf("503 reports accepted %s, want 0: %s", got, r.body)
	}
	if strings.Contains(string(r.body), "brokers down") {
		t.Errorf("503 leaks the internal error: %s", r.body)
	}

	s = newTestServer(t, pub, func(c *Config) { c.RetryAfter = 2500 * time.Millisecond })
	r = post(t, s, "", eventJSON(0, true))
	wantError(t, r, http.StatusServiceUnavailable)
	if got := r.header.Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After %q, want 3", got)
	}
}

func TestRouting(t *testing.T) {
	s := newTestServer(t, &fakePublisher{}, nil)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodHead} {
		r := do(t, s, m, "/v1/events", "", "")
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
			t.Errorf("%s /v1/events: %d, Allow %q", m, r.status, r.header.Get("Allow"))
		}
	}
	r := do(t, s, http.MethodPost, "/healthz", "", "")
	wantError(t, r, http.StatusMethodNotAllowed)
	for _, p := range []string{"/", "/v1/event", "/v1/events/", "/v2/events"} {
		wantError(t, do(t, s, http.MethodPost, p, "", eventJSON(0, true)), http.StatusNotFound)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	pub := &fakePublisher{}
	s := newTestServer(t, pub, nil)
	wantStatus(t, do(t, s, http.MethodGet, "/healthz", "", ""), http.StatusOK)
	wantStatus(t, do(t, s, http.MethodGet, "/readyz", "", ""), http.StatusOK)
	pub.readyErr = errors.New("no leader")
	wantStatus(t, do(t, s, http.MethodGet, "/readyz", "", ""), http.StatusServiceUnavailable)
	wantStatus(t, do(t, s, http.MethodGet, "/healthz", "", ""), http.StatusOK)
}

func TestTraceContext(t *testing.T) {
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})

	pub := &fakePublisher{}
	s := newTestServer(t, pub, nil)
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := post(t, s, "application/x-ndjson", eventJSON(0, true)+"\n{}\n"+eventJSON(1, false), "traceparent", parent)
	wantStatus(t, r, http.StatusOK)

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1", len(spans))
	}
	sp := spans[0]
	if sp.Name() != "POST /v1/events" || sp.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q kind %v", sp.Name(), sp.SpanKind())
	}
	if sp.Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sp.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span parent %v, want the incoming traceparent", sp.Parent())
	}
	attrs := map[string]int64{}
	for _, kv := range sp.Attributes() {
		attrs[string(kv.Key)] = kv.Value.AsInt64()
	}
	if attrs["sluice.events.accepted"] != 2 || attrs["sluice.events.rejected"] != 1 {
		t.Errorf("span attributes %v", sp.Attributes())
	}

	want := fmt.Sprintf("00-%s-%s-01", sp.SpanContext().TraceID(), sp.SpanContext().SpanID())
	msgs := pub.messages()
	if len(msgs) != 2 {
		t.Fatalf("published %d, want 2", len(msgs))
	}
	for i, m := range msgs {
		if got := m.Headers["traceparent"]; got != want {
			t.Errorf("message %d traceparent %q, want %q", i, got, want)
		}
	}
}

func TestServeAndShutdown(t *testing.T) {
	pub := &fakePublisher{}
	s := newTestServer(t, pub, func(c *Config) { c.Addr = "127.0.0.1:0"; c.ShutdownTimeout = 5 * time.Second })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()

	url := "http://" + ln.Addr().String()
	resp, err := http.Post(url+"/v1/events", "application/x-ndjson", strings.NewReader(eventJSON(0, true)))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST status %d", resp.StatusCode)
	}

	// A busy port is reported with its address.
	busy := newTestServer(t, pub, func(c *Config) { c.Addr = ln.Addr().String() })
	err = busy.ListenAndServe(context.Background())
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("ListenAndServe on a busy port = %v, want an error naming %s", err, ln.Addr())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after shutdown = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
}

func TestListenAndServeShutdown(t *testing.T) {
	s := newTestServer(t, &fakePublisher{}, func(c *Config) { c.Addr = "127.0.0.1:0" })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.ListenAndServe(ctx); err != nil {
		t.Fatalf("ListenAndServe = %v, want nil after graceful shutdown", err)
	}
}

// ndjsonBody returns n valid events as NDJSON.
func ndjsonBody(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(eventJSON(i, i%3 != 0))
		b.WriteByte('\n')
	}
	return b.String()
}

func BenchmarkNDJSON500(b *testing.B) {
	s, err := New(DefaultConfig(), nopPublisher{}, discardLogger())
	if err != nil {
		b.Fatal(err)
	}
	body := ndjsonBody(500)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkArray500(b *testing.B) {
	s, err := New(DefaultConfig(), nopPublisher{}, discardLogger())
	if err != nil {
		b.Fatal(err)
	}
	events := strings.Split(strings.TrimSpace(ndjsonBody(500)), "\n")
	body := "[" + strings.Join(events, ",") + "]"
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, []Message) error { return nil }
func (nopPublisher) Ready(context.Context) error              { return nil }
