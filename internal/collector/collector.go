// Package collector implements Sluice's ingestion endpoint, POST /v1/events:
// it validates batches of events and publishes the valid ones to Kafka,
// answering 2xx only once every accepted event is durably stored.
package collector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicedata/sluice/schemas"
)

const instrumentationName = "github.com/sluicedata/sluice/internal/collector"

// HTTP server timeouts. The write timeout covers the Kafka round trip.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
)

// Message is one Kafka record produced by the collector.
type Message struct {
	// Key is the event's partition key (item_id, else user_id).
	Key []byte
	// Value is the event encoded as compact JSON.
	Value []byte
	// Headers carry the W3C trace context of the request. All messages of
	// one request share the same map: treat it as read-only.
	Headers map[string]string
}

// Publisher durably stores messages. Publish must return nil only once every
// message is acknowledged by all in-sync replicas.
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) error
	Ready(ctx context.Context) error
}

// Server is the collector's HTTP server.
type Server struct {
	cfg        Config
	pub        Publisher
	log        *slog.Logger
	tokenHash  [sha256.Size]byte
	retryAfter string
	handler    http.Handler

	tracer    trace.Tracer
	accepted  metric.Int64Counter
	rejected  metric.Int64Counter
	failures  metric.Int64Counter
	durations metric.Float64Histogram
}

// New returns a Server that publishes through pub. A nil log means
// slog.Default().
func New(cfg Config, pub Publisher, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("creating collector: nil Publisher")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg:        cfg,
		pub:        pub,
		log:        log,
		tokenHash:  sha256.Sum256([]byte(cfg.Token)),
		retryAfter: strconv.FormatInt(int64(math.Ceil(cfg.RetryAfter.Seconds())), 10),
		tracer:     otel.Tracer(instrumentationName),
	}
	if err := s.initMetrics(otel.Meter(instrumentationName)); err != nil {
		return nil, fmt.Errorf("creating collector metrics: %w", err)
	}
	s.handler = http.HandlerFunc(s.route)
	return s, nil
}

func (s *Server) initMetrics(m metric.Meter) error {
	var err error
	if s.accepted, err = m.Int64Counter("sluice.collector.events.accepted",
		metric.WithUnit("{event}"),
		metric.WithDescription("Events validated and durably published to Kafka.")); err != nil {
		return err
	}
	if s.rejected, err = m.Int64Counter("sluice.collector.events.rejected",
		metric.WithUnit("{event}"),
		metric.WithDescription("Events rejected by validation.")); err != nil {
		return err
	}
	if s.failures, err = m.Int64Counter("sluice.collector.publish.failures",
		metric.WithUnit("{request}"),
		metric.WithDescription("Requests answered 503 because publishing to Kafka failed.")); err != nil {
		return err
	}
	if s.durations, err = m.Float64Histogram("http.server.request.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP server requests."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return err
	}
	return nil
}

// Handler returns the collector's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// ListenAndServe listens on the configured address and serves until ctx is
// done, then shuts down gracefully and returns nil.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves HTTP on ln until ctx is done, then stops accepting
// connections, waits up to Config.ShutdownTimeout for requests in flight and
// returns nil. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("collector listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serving http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	s.log.Info("collector shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutting down http server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving http on %s: %w", ln.Addr(), err)
	}
	return nil
}

// route dispatches by path, then method, and records the request duration.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var route string
	var status int
	switch r.URL.Path {
	case "/v1/events":
		route = "/v1/events"
		if r.Method != http.MethodPost {
			status = methodNotAllowed(w, http.MethodPost)
			break
		}
		status = s.events(w, r)
	case "/healthz":
		route = "/healthz"
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			status = methodNotAllowed(w, "GET, HEAD")
			break
		}
		status = writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
	case "/readyz":
		route = "/readyz"
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			status = methodNotAllowed(w, "GET, HEAD")
			break
		}
		status = s.readyz(w, r)
	default:
		status = writeError(w, http.StatusNotFound, "not found")
	}

	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.Method),
		attribute.Int("http.response.status_code", status),
	}
	if route != "" {
		attrs = append(attrs, attribute.String("http.route", route))
	}
	s.durations.Record(r.Context(), time.Since(start).Seconds(), metric.WithAttributes(attrs...))
}

// readyz answers 200 when the publisher can reach Kafka, else 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) int {
	if err := s.pub.Ready(r.Context()); err != nil {
		s.log.Warn("collector not ready", "err", err)
		return writeJSON(w, http.StatusServiceUnavailable, statusBody{Status: "unavailable", Error: err.Error()})
	}
	return writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
}

// Rejection describes one event that failed validation.
type Rejection struct {
	// Index is the 0-based position of the event in the array, or among
	// the non-empty lines of an NDJSON body.
	Index int `json:"index"`
	// Line is the 1-based line number in an NDJSON body; 0 (omitted) for
	// JSON arrays.
	Line int `json:"line,omitempty"`
	// Reason is the rule the event broke, as "<field>: <rule>".
	Reason string `json:"reason"`
}

// Response is the body of a 200 answer to POST /v1/events.
type Response struct {
	Accepted int         `json:"accepted"`
	Rejected []Rejection `json:"rejected"`
}

// errorBody is the body of every non-200 answer to POST /v1/events.
type errorBody struct {
	Error string `json:"error"`
	// Accepted is set on 503 to make explicit that nothing was accepted.
	Accepted *int `json:"accepted,omitempty"`
}

type statusBody struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// item is one raw event of a request body.
type item struct {
	raw  []byte
	line int // 1-based NDJSON line, 0 for arrays
}

// events handles POST /v1/events.
func (s *Server) events(w http.ResponseWriter, r *http.Request) int {
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := s.tracer.Start(ctx, "POST /v1/events",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", http.MethodPost),
			attribute.String("http.route", "/v1/events"),
		))
	defer span.End()

	status, accepted, rejected := s.ingest(ctx, w, r)

	span.SetAttributes(
		attribute.Int("http.response.status_code", status),
		attribute.Int("sluice.events.accepted", accepted),
		attribute.Int("sluice.events.rejected", rejected),
	)
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	return status
}

// ingest reads, validates and publishes one request body and writes the
// answer. It returns the status and the accepted and rejected counts.
func (s *Server) ingest(ctx context.Context, w http.ResponseWriter, r *http.Request) (status, accepted, rejected int) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
		return writeError(w, http.StatusUnauthorized, "missing or invalid bearer token"), 0, 0
	}

	body, status, err := s.readBody(w, r)
	if err != nil {
		return writeError(w, status, err.Error()), 0, 0
	}

	items, status, err := s.split(body, isNDJSONType(r.Header.Get("Content-Type")))
	if err != nil {
		return writeError(w, status, err.Error()), 0, 0
	}

	// Every message of the request carries the trace context of its span.
	headers := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, headers)

	now := time.Now()
	msgs := make([]Message, 0, len(items))
	resp := Response{Rejected: []Rejection{}}
	// The re-encoded values share one buffer (the body's size is a good
	// guess); a value keeps the array it was written to if it grows.
	values := make([]byte, 0, len(body)+len(body)/8)
	for i, it := range items {
		// The body is never written to again, so the event may share it.
		ev, err := schemas.DecodeEventShared(it.raw, now)
		if err != nil {
			resp.Rejected = append(resp.Rejected, Rejection{Index: i, Line: it.line, Reason: err.Error()})
			continue
		}
		start := len(values)
		if values, err = ev.AppendJSON(values); err != nil {
			resp.Rejected = append(resp.Rejected, Rejection{Index: i, Line: it.line, Reason: "encoding event: " + err.Error()})
			continue
		}
		value := values[start:len(values):len(values)]
		msgs = append(msgs, Message{Key: []byte(ev.PartitionKey()), Value: value, Headers: headers})
	}

	if len(msgs) > 0 {
		if err := s.pub.Publish(ctx, msgs); err != nil {
			// The whole request failed from the client's point of view and
			// it must retry all of it. Some events may nevertheless have
			// reached Kafka before the failure; the retry publishes them
			// again and consumers deduplicate by event_id.
			s.failures.Add(ctx, 1)
			trace.SpanFromContext(ctx).RecordError(err)
			s.log.WarnContext(ctx, "publishing events failed", "events", len(msgs), "err", err)
			w.Header().Set("Retry-After", s.retryAfter)
			zero := 0
			return writeJSON(w, http.StatusServiceUnavailable, errorBody{
				Error:    "event store unavailable, nothing was accepted: retry the whole request",
				Accepted: &zero,
			}), 0, len(resp.Rejected)
		}
	}

	resp.Accepted = len(msgs)
	s.accepted.Add(ctx, int64(resp.Accepted))
	s.rejected.Add(ctx, int64(len(resp.Rejected)))
	return writeJSON(w, http.StatusOK, resp), resp.Accepted, len(resp.Rejected)
}

// authorized reports whether r carries the configured bearer token. The
// comparison runs in constant time over fixed-length digests, so it reveals
// neither the token's content nor its length.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) < len(prefix) || !asciiEqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(h[len(prefix):]))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// readBody reads the whole body within Config.MaxBodyBytes. On error it
// also returns the status to answer with.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body exceeds %d bytes", limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body exceeds %d bytes", limit)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("reading body: %w", err)
	}
	return buf.Bytes(), 0, nil
}

// split cuts body into raw events: the elements of a JSON array, or the
// non-empty lines of an NDJSON body. A body is NDJSON when its content type
// says so or when it does not start with '['. On error it also returns the
// status to answer with.
func (s *Server) split(body []byte, ndjsonType bool) ([]item, int, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, http.StatusBadRequest, errors.New("empty body")
	}
	var items []item
	if ndjsonType || trimmed[0] != '[' {
		var tooMany bool
		items, tooMany = splitLines(body, s.cfg.MaxEvents)
		if tooMany {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("more than %d events", s.cfg.MaxEvents)
		}
	} else {
		raws, tooMany, err := schemas.SplitArray(trimmed, s.cfg.MaxEvents)
		if tooMany {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("more than %d events", s.cfg.MaxEvents)
		}
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("body is not a valid JSON array: %w", err)
		}
		items = make([]item, len(raws))
		for i, raw := range raws {
			items[i] = item{raw: raw}
		}
	}
	if len(items) == 0 {
		return nil, http.StatusBadRequest, errors.New("no events")
	}
	return items, 0, nil
}

// splitLines returns the non-blank lines of body with their 1-based line
// numbers. It stops and reports tooMany once it finds more than limit.
func splitLines(body []byte, limit int) (items []item, tooMany bool) {
	items = make([]item, 0, min(bytes.Count(body, []byte{'\n'})+1, limit))
	for line := 1; len(body) > 0; line++ {
		var raw []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			raw, body = body[:i], body[i+1:]
		} else {
			raw, body = body, nil
		}
		raw = bytes.Trim(raw, " \t\r")
		if len(raw) == 0 {
			continue
		}
		if len(items) == limit {
			return nil, true
		}
		items = append(items, item{raw: raw, line: line})
	}
	return items, false
}

// isNDJSONType reports whether the Content-Type names newline-delimited
// JSON.
func isNDJSONType(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return true
	}
	return false
}

func methodNotAllowed(w http.ResponseWriter, allow string) int {
	w.Header().Set("Allow", allow)
	return writeError(w, http.StatusMethodNotAllowed, "method not allowed")
}

func writeError(w http.ResponseWriter, status int, msg string) int {
	return writeJSON(w, status, errorBody{Error: msg})
}

// writeJSON writes v as the JSON body of a response with the given status
// and returns the status.
func writeJSON(w http.ResponseWriter, status int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own plain structs are encoded here.
		b = []byte(`{"error":"encoding response"}`)
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return status
}
