package tail

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/testutil/kafkatest"
	"github.com/sluicedata/sluice/schemas"
)

// flakyPub wraps the real publisher and fails on demand. The first failure
// after writeThenFail is set publishes for real and then reports an error,
// like a request whose answer was lost.
type flakyPub struct {
	real *kafka.Publisher

	mu            sync.Mutex
	failN         int
	writeThenFail bool
}

func (p *flakyPub) Publish(ctx context.Context, msgs []kafka.Message) error {
	p.mu.Lock()
	fail := p.failN > 0
	if fail {
		p.failN--
	}
	write := fail && p.writeThenFail
	if write {
		p.writeThenFail = false
	}
	p.mu.Unlock()
	if !fail {
		return p.real.Publish(ctx, msgs)
	}
	if write {
		if err := p.real.Publish(ctx, msgs); err != nil {
			return err
		}
		return fmt.Errorf("answer lost: %w", kafka.ErrUnavailable)
	}
	return fmt.Errorf("broker down: %w", kafka.ErrUnavailable)
}

func (p *flakyPub) failNext(n int, writeFirst bool) {
	p.mu.Lock()
	p.failN, p.writeThenFail = n, writeFirst
	p.mu.Unlock()
}

// TestKafkaEndToEnd tails a file into an in-process broker through the real
// kafka.Publisher, then has publishing fail for a while, once after the
// records were written, and checks that deduplicating by event_id leaves
// every line exactly once.
func TestKafkaEndToEnd(t *testing.T) {
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})

	_, kcfg := kafkatest.Start(t)
	const topic = "logs"
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

	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	occurred := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	var content strings.Builder
	content.WriteString(numbered("line", 0, 40))
	for i := range 5 {
		fmt.Fprintf(&content, `{"event_id":"evt-%d","type":"view","occurred_at":%q,"user_id":"u-%d","item_id":"item-%d"}`+"\n", i, occurred, i, i%2)
	}
	content.WriteString(`{"event_id":"evt-bad","type":"view"}` + "\n")
	appendTo(t, path, content.String())

	pub := &flakyPub{real: kp}
	cfg := testConfig(filepath.Join(dir, "pos.json"), path)
	cfg.BatchLines = 20
	r := start(t, cfg, pub)
	waitFor(t, 10*time.Second, "46 lines acknowledged", func() bool { return r.tl.Stats().Lines == 46 })

	check := func(wantLines string, wantEvents int) (total int) {
		t.Helper()
		offsets, err := kafka.EndOffsets(ctx, kcfg, topic)
		if err != nil {
			t.Fatalf("EndOffsets: %v", err)
		}
		recs := kafkatest.ReadTo(t, kcfg, topic, offsets)
		ids := map[string]bool{}
		var logs []*sarama.ConsumerMessage
		invalid := 0
		partitionOf := map[string]int32{}
		for _, m := range recs {
			if prev, ok := partitionOf[string(m.Key)]; ok && prev != m.Partition {
				t.Errorf("key %q on partitions %d and %d", m.Key, prev, m.Partition)
			}
			partitionOf[string(m.Key)] = m.Partition
			if tp := findHeader(m.Headers, "traceparent"); !strings.HasPrefix(tp, "00-") {
				t.Errorf("record at %d/%d has traceparent %q", m.Partition, m.Offset, tp)
			}
			ev, err := schemas.DecodeEvent(m.Value, time.Now())
			if err != nil {
				invalid++
				if string(m.Value) != `{"event_id":"evt-bad","type":"view"}` {
					t.Errorf("unexpected invalid record %q", m.Value)
				}
				continue
			}
			if string(m.Key) != ev.PartitionKey() {
				t.Errorf("record %s keyed %q", ev.EventID, m.Key)
			}
			if ids[ev.EventID] {
				continue // a duplicate: downstream drops it by event_id
			}
			ids[ev.EventID] = true
			if ev.Type == "log" {
				logs = append(logs, m)
			}
		}
		if invalid != 1 || len(ids) != wantEvents {
			t.Fatalf("topic holds %d distinct events and %d invalid records, want %d and 1", len(ids), invalid, wantEvents)
		}
		var msgs []kafka.Message
		for _, m := range logs {
			msgs = append(msgs, kafka.Message{Key: m.Key, Value: m.Value})
		}
		checkExactlyOnce(t, decodeLogs(t, msgs), wantLines)
		return len(recs)
	}
	if total := check(numbered("line", 0, 40), 45); total != 46 {
		t.Fatalf("topic holds %d records, want 46", total)
	}

	// Kafka "down": three failures, the first after the records landed.
	pub.failNext(3, true)
	appendTo(t, path, numbered("line", 40, 70))
	waitFor(t, 10*time.Second, "76 lines acknowledged", func() bool { return r.tl.Stats().Lines == 76 })
	r.stop(t)
	if st := r.tl.Stats(); st.PublishFailures != 3 || st.Invalid != 1 {
		t.Errorf("stats %+v", st)
	}
	if total := check(numbered("line", 0, 70), 75); total <= 76 {
		t.Errorf("topic holds %d records; the write-then-fail attempt should have left duplicates", total)
	}
}

func findHeader(hs []*sarama.RecordHeader, key string) string {
	for _, h := range hs {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}
