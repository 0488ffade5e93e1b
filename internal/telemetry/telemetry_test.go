package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpSink is a fake OTLP/HTTP collector that records what it receives.
type otlpSink struct {
	mu     sync.Mutex
	paths  []string
	traces []*collectortrace.ExportTraceServiceRequest
}

func newSink(t *testing.T) (*otlpSink, *httptest.Server) {
	t.Helper()
	s := &otlpSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.paths = append(s.paths, r.Method+" "+r.URL.Path)
		if r.URL.Path == "/v1/traces" {
			var req collectortrace.ExportTraceServiceRequest
			if err := proto.Unmarshal(body, &req); err == nil {
				s.traces = append(s.traces, &req)
			}
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *otlpSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.paths)
}

// isolate clears the OTEL_* variables Setup reads and restores the global
// providers after the test.
func isolate(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
	} {
		t.Setenv(k, "")
	}
	tp, mp, prop := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetMeterProvider(mp)
		otel.SetTextMapPropagator(prop)
	})
}

func shutdownCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantW3CPropagator(t *testing.T) {
	t.Helper()
	fields := otel.GetTextMapPropagator().Fields()
	for _, f := range []string{"traceparent", "tracestate", "baggage"} {
		if !slices.Contains(fields, f) {
			t.Errorf("propagator fields %v lack %s", fields, f)
		}
	}
}

func resourceAttr(req *collectortrace.ExportTraceServiceRequest, key string) string {
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == key {
				return kv.GetValue().GetStringValue()
			}
		}
	}
	return ""
}

func TestSetupExportsTracesOverHTTP(t *testing.T) {
	isolate(t)
	sink, srv := newSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_METRICS_EXPORTER", "none")

	shutdown, err := Setup(context.Background(), "sluice-test", "1.2.3")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	wantW3CPropagator(t)
	_, span := otel.Tracer("test").Start(context.Background(), "unit-of-work")
	if !span.SpanContext().IsValid() {
		t.Fatal("Setup left a no-op tracer provider")
	}
	span.End()
	if err := shutdown(shutdownCtx(t)); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	if got := sink.got(); !slices.Contains(got, "POST /v1/traces") || slices.Contains(got, "POST /v1/metrics") {
		t.Fatalf("collector received %v, want POST /v1/traces only", got)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.traces) == 0 {
		t.Fatal("no decodable trace export")
	}
	req := sink.traces[0]
	if got := resourceAttr(req, "service.name"); got != "sluice-test" {
		t.Errorf("service.name = %q", got)
	}
	if got := resourceAttr(req, "service.version"); got != "1.2.3" {
		t.Errorf("service.version = %q", got)
	}
	if got := req.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()[0].GetName(); got != "unit-of-work" {
		t.Errorf("span name %q", got)
	}
}

func TestSetupServiceNameFromEnv(t *testing.T) {
	isolate(t)
	sink, srv := newSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", srv.URL+"/v1/traces")
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")

	shutdown, err := Setup(context.Background(), "sluice-test", "1.2.3")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "x")
	span.End()
	if err := shutdown(shutdownCtx(t)); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.traces) == 0 {
		t.Fatalf("no trace export; got %v", sink.paths)
	}
	if got := resourceAttr(sink.traces[0], "service.name"); got != "from-env" {
		t.Errorf("service.name = %q, want from-env", got)
	}
	if got := resourceAttr(sink.traces[0], "deployment.environment.name"); got != "test" {
		t.Errorf("deployment.environment.name = %q", got)
	}
}

func TestSetupMetricsOnly(t *testing.T) {
	isolate(t)
	sink, srv := newSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_TRACES_EXPORTER", "none")

	shutdown, err := Setup(context.Background(), "sluice-test", "dev")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	c, err := otel.Meter("test").Int64Counter("things")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)
	_, span := otel.Tracer("test").Start(context.Background(), "x")
	if span.SpanContext().IsValid() {
		t.Error("traces exported although OTEL_TRACES_EXPORTER=none")
	}
	span.End()
	if err := shutdown(shutdownCtx(t)); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := sink.got(); !slices.Contains(got, "POST /v1/metrics") || slices.Contains(got, "POST /v1/traces") {
		t.Fatalf("collector received %v, want POST /v1/metrics only", got)
	}
}

func TestSetupDisabled(t *testing.T) {
	isolate(t)
	sink, srv := newSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SDK_DISABLED", "true")

	shutdown, err := Setup(context.Background(), "sluice-test", "dev")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	wantW3CPropagator(t)
	_, span := otel.Tracer("test").Start(context.Background(), "x")
	if span.SpanContext().IsValid() {
		t.Error("SDK disabled but spans are recorded")
	}
	span.End()
	if err := shutdown(shutdownCtx(t)); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := sink.got(); len(got) != 0 {
		t.Fatalf("disabled SDK exported %v", got)
	}
}

func TestSetupWithoutEndpointIsNoop(t *testing.T) {
	isolate(t)
	shutdown, err := Setup(context.Background(), "sluice-test", "dev")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	wantW3CPropagator(t)
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	// The no-op provider still passes incoming trace context along.
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	if carrier["traceparent"] == "" {
		t.Error("no traceparent injected")
	}
	_, span := otel.Tracer("test").Start(context.Background(), "x")
	if span.SpanContext().IsValid() {
		t.Error("no endpoint configured but spans are recorded")
	}
	span.End()
	if err := shutdown(shutdownCtx(t)); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestSetupGRPCProtocol(t *testing.T) {
	isolate(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	shutdown, err := Setup(context.Background(), "sluice-test", "dev")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = shutdown(ctx) // nothing listens; only the setup path is under test
}

func TestSetupRejectsUnknownProtocol(t *testing.T) {
	isolate(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
	shutdown, err := Setup(context.Background(), "sluice-test", "dev")
	if err == nil {
		t.Fatal("Setup accepted http/json")
	}
	if shutdown == nil {
		t.Fatal("Setup returned a nil shutdown func")
	}
}
