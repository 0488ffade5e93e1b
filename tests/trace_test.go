package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTraceContextFlowsToBatchSpan: a POST carrying a W3C traceparent gets a
// collector span in that trace, the trace context rides in the Kafka record
// headers, and the consume activity's batch span links back to it.
func TestTraceContextFlowsToBatchSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)
	// What telemetry.Setup installs in the sluice binary.
	prevProp := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	defer otel.SetTextMapPropagator(prevProp)

	cfg, db, _ := newStackConfig(t, false)
	s := startStack(t, cfg)
	defer stopStack(t, s)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	at := time.Now().UTC().Format(time.RFC3339)
	req, _ := http.NewRequest("POST", s.Collector+"/v1/events",
		strings.NewReader(fmt.Sprintf(`[{"event_id":"traced-1","type":"share","occurred_at":%q,"user_id":"u1","item_id":"r7"}]`, at)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST answered %d", resp.StatusCode)
	}

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, sp := range rec.Ended() {
			if sp.Name() != "sluice.ingest.batch" {
				continue
			}
			for _, l := range sp.Links() {
				if l.SpanContext.TraceID().String() == traceID {
					if queryInt(t, db, "SELECT COUNT(*) FROM events WHERE event_id = 'traced-1'") != 1 {
						t.Fatal("batch span ended but the event is not in MySQL")
					}
					var collectorSpan bool
					for _, c := range rec.Ended() {
						if c.SpanContext().TraceID().String() == traceID && c.SpanKind().String() == "server" {
							collectorSpan = true
						}
					}
					if !collectorSpan {
						t.Fatal("no collector server span in the incoming trace")
					}
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var names []string
	for _, sp := range rec.Ended() {
		names = append(names, sp.Name())
	}
	t.Fatalf("no sluice.ingest.batch span linked to trace %s; spans seen: %v", traceID, names)
}
