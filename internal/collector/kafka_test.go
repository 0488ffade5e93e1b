package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/testutil/kafkatest"
	"github.com/sluicedata/sluice/schemas"
)

// TestKafkaEndToEnd posts events to a collector backed by the real
// kafka.Publisher on an in-process broker and reads them back.
func TestKafkaEndToEnd(t *testing.T) {
	prevProp := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prevProp) })

	cluster, kcfg := kafkatest.Start(t)
	const topic = "events.v1"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopic(ctx, kcfg, topic, 3, 1); err != nil {
		t.Fatalf("EnsureTopic: %v", err)
	}
	kp, err := kafka.NewPublisher(kcfg, topic)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = kp.Close() })

	s, err := New(DefaultConfig(), KafkaPublisher(kp), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz %d, want 200", resp.StatusCode)
	}

	const n = 30
	var body strings.Builder
	for i := range n {
		body.WriteString(eventJSON(i, i%2 == 0))
		body.WriteByte('\n')
		if i == 10 {
			body.WriteString("{\"event_id\":\"bad\"}\n")
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/events", strings.NewReader(body.String()))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	var out Response
	err = json.NewDecoder(resp.Body).Decode(&out)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: status %d, decode error %v", resp.StatusCode, err)
	}
	if out.Accepted != n || len(out.Rejected) != 1 || out.Rejected[0].Index != 11 || out.Rejected[0].Line != 12 {
		t.Fatalf("response %+v", out)
	}

	offsets, err := kafka.EndOffsets(ctx, kcfg, topic)
	if err != nil {
		t.Fatalf("EndOffsets: %v", err)
	}
	var total int64
	for _, o := range offsets {
		total += o
	}
	if total != n {
		t.Fatalf("topic holds %d records, want %d", total, n)
	}

	got := kafkatest.ReadTo(t, kcfg, topic, offsets)
	seen := map[string]bool{}
	for _, m := range got {
		ev, err := schemas.DecodeEvent(m.Value, time.Now())
		if err != nil {
			t.Fatalf("record %s: %v", m.Value, err)
		}
		if string(m.Key) != ev.PartitionKey() {
			t.Errorf("record key %q, want %q", m.Key, ev.PartitionKey())
		}
		seen[ev.EventID] = true
		var tp string
		for _, h := range m.Headers {
			if string(h.Key) == "traceparent" {
				tp = string(h.Value)
			}
		}
		if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
			t.Errorf("record %s: traceparent %q does not continue the request's trace", ev.EventID, tp)
		}
	}
	for i := range n {
		if !seen[fmt.Sprintf("evt-%d", i)] {
			t.Errorf("evt-%d missing from Kafka", i)
		}
	}

	// With the broker gone the collector answers 503 and accepts nothing.
	cluster.Close()
	resp, err = http.Post(srv.URL+"/v1/events", "application/x-ndjson", strings.NewReader(eventJSON(99, true)))
	if err != nil {
		t.Fatal(err)
	}
	var failed map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&failed)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || failed["accepted"] != float64(0) {
		t.Fatalf("after broker loss: status %d, Retry-After %q, body %v", resp.StatusCode, resp.Header.Get("Retry-After"), failed)
	}
}
