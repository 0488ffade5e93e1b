package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// startCluster starts a single-broker in-process Kafka on a random port and
// returns a Config pointing at it.
func startCluster(t *testing.T) (*kfake.Cluster, Config) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	cfg := DefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	cfg.ClientID = "sluice-test"
	return c, cfg
}

func newTopic(t *testing.T, cfg Config, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := EnsureTopic(ctx, cfg, topic, partitions, 1); err != nil {
		t.Fatalf("EnsureTopic: %v", err)
	}
}

func newPublisher(t *testing.T, cfg Config, topic string) *Publisher {
	t.Helper()
	p, err := NewPublisher(cfg, topic)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// consumeAll reads n records from every partition of topic, starting at the
// oldest offset.
func consumeAll(t *testing.T, cfg Config, topic string, n int) []*sarama.ConsumerMessage {
	t.Helper()
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := sarama.NewConsumer(cfg.Brokers, sc)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer func() { _ = consumer.Close() }()
	parts, err := consumer.Partitions(topic)
	if err != nil {
		t.Fatalf("Partitions: %v", err)
	}
	out := make(chan *sarama.ConsumerMessage, n)
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition %d: %v", p, err)
		}
		defer func() { _ = pc.Close() }()
		go func() {
			for m := range pc.Messages() {
				out <- m
			}
		}()
	}
	var msgs []*sarama.ConsumerMessage
	timeout := time.After(15 * time.Second)
	for len(msgs) < n {
		select {
		case m := <-out:
			msgs = append(msgs, m)
		case <-timeout:
			t.Fatalf("consumed %d of %d records before timing out", len(msgs), n)
		}
	}
	return msgs
}

// franzHeaders converts produced headers to the consumer's kind.
func franzHeaders(hs []sarama.RecordHeader) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = kgo.RecordHeader{Key: string(h.Key), Value: h.Value}
	}
	return out
}

func header(hs []*sarama.RecordHeader, key string) (string, bool) {
	for _, h := range hs {
		if string(h.Key) == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"empty version uses default", func(c *Config) { c.Version = "" }, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "Brokers"},
		{"blank broker", func(c *Config) { c.Brokers = []string{" "} }, "Brokers[0]"},
		{"bad version", func(c *Config) { c.Version = "x" }, "Version"},
		{"old version", func(c *Config) { c.Version = "2.1.0" }, "Version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				sc, err := c.Sarama()
				if err != nil {
					t.Fatalf("Sarama: %v", err)
				}
				if !sc.Version.IsAtLeast(sarama.V2_8_0_0) || sc.ClientID != DefaultClientID {
					t.Fatalf("Sarama: version %s, client id %q", sc.Version, sc.ClientID)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want error naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestPublishReadBack(t *testing.T) {
	_, cfg := startCluster(t)
	const topic = "events"
	newTopic(t, cfg, topic, 4)
	p := newPublisher(t, cfg, topic)

	const n = 40
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{
			Key:   fmt.Appendf(nil, "key-%d", i%5),
			Value: fmt.Appendf(nil, `{"n":%d}`, i),
			Headers: []sarama.RecordHeader{
				{Key: []byte("seq"), Value: fmt.Appendf(nil, "%d", i)},
			},
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Publish(ctx, msgs); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	got := consumeAll(t, cfg, topic, n)
	partitionOf := map[string]int32{}
	seen := map[string]bool{}
	for _, m := range got {
		seq, ok := header(m.Headers, "seq")
		if !ok {
			t.Fatalf("record at %d/%d lacks the seq header", m.Partition, m.Offset)
		}
		var i int
		if _, err := fmt.Sscan(seq, &i); err != nil {
			t.Fatalf("bad seq header %q", seq)
		}
		if want := string(msgs[i].Key); string(m.Key) != want {
			t.Errorf("record %d: key %q, want %q", i, m.Key, want)
		}
		if want := string(msgs[i].Value); string(m.Value) != want {
			t.Errorf("record %d: value %q, want %q", i, m.Value, want)
		}
		if seen[seq] {
			t.Errorf("record %d delivered twice", i)
		}
		seen[seq] = true
		if prev, ok := partitionOf[string(m.Key)]; ok && prev != m.Partition {
			t.Errorf("key %s on partitions %d and %d", m.Key, prev, m.Partition)
		}
		partitionOf[string(m.Key)] = m.Partition
	}

	// Same key, later batch: still the same partition.
	if err := p.Publish(ctx, []Message{{Key: []byte("key-3"), Value: []byte("again")}}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got = consumeAll(t, cfg, topic, n+1)
	for _, m := range got {
		if string(m.Value) == "again" && m.Partition != partitionOf["key-3"] {
			t.Errorf("key-3 moved from partition %d to %d", partitionOf["key-3"], m.Partition)
		}
	}

	offsets, err := EndOffsets(ctx, cfg, topic)
	if err != nil {
		t.Fatalf("EndOffsets: %v", err)
	}
	var total int64
	for _, o := range offsets {
		total += o
	}
	if len(offsets) != 4 || total != n+1 {
		t.Errorf("EndOffsets = %v (total %d), want 4 partitions totalling %d", offsets, total, n+1)
	}
}

func TestPublishEmptyIsNoop(t *testing.T) {
	_, cfg := startCluster(t)
	newTopic(t, cfg, "empty", 1)
	p := newPublisher(t, cfg, "empty")
	if err := p.Publish(context.Background(), nil); err != nil {
		t.Fatalf("Publish(nil): %v", err)
	}
}

func TestEnsureTopicTwice(t *testing.T) {
	_, cfg := startCluster(t)
	ctx := context.Background()
	if err := EnsureTopic(ctx, cfg, "t", 3, 1); err != nil {
		t.Fatalf("first EnsureTopic: %v", err)
	}
	// A second call, even with other settings, succeeds and changes nothing.
	if err := EnsureTopic(ctx, cfg, "t", 6, 1); err != nil {
		t.Fatalf("second EnsureTopic: %v", err)
	}
	offsets, err := EndOffsets(ctx, cfg, "t")
	if err != nil {
		t.Fatalf("EndOffsets: %v", err)
	}
	if len(offsets) != 3 {
		t.Fatalf("topic has %d partitions, want 3", len(offsets))
	}
	for p, o := range offsets {
		if o != 0 {
			t.Errorf("partition %d end offset %d, want 0", p, o)
		}
	}
}

func TestEnsureTopicRejectsBadArgs(t *testing.T) {
	cfg := DefaultConfig()
	ctx := context.Background()
	for _, tc := range []struct {
		topic string
		parts int32
		repl  int16
	}{{"", 1, 1}, {"t", 0, 1}, {"t", 1, 0}} {
		if err := EnsureTopic(ctx, cfg, tc.topic, tc.parts, tc.repl); err == nil {
			t.Errorf("EnsureTopic(%q, %d, %d) succeeded", tc.topic, tc.parts, tc.repl)
		}
	}
}

func TestReady(t *testing.T) {
	c, cfg := startCluster(t)
	newTopic(t, cfg, "ready", 2)
	p := newPublisher(t, cfg, "ready")
	ctx := context.Background()
	if err := p.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	// Cached: a second call right away answers without a round trip.
	if err := p.Ready(ctx); err != nil {
		t.Fatalf("Ready (cached): %v", err)
	}

	c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := p.Ready(ctx)
		if err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Ready after close = %v, want ErrUnavailable", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Ready still succeeds after the cluster closed")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestReadyUnknownTopic(t *testing.T) {
	_, cfg := startCluster(t)
	newTopic(t, cfg, "exists", 1)
	p := newPublisher(t, cfg, "missing")
	if err := p.Ready(context.Background()); err == nil {
		t.Fatal("Ready succeeded for a topic that does not exist")
	}
}

func TestPublishToClosedClusterIsUnavailable(t *testing.T) {
	c, cfg := startCluster(t)
	newTopic(t, cfg, "down", 2)
	p := newPublisher(t, cfg, "down")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Publish(ctx, []Message{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
		t.Fatalf("Publish before close: %v", err)
	}

	c.Close()
	start := time.Now()
	err := p.Publish(ctx, []Message{{Key: []byte("k"), Value: []byte("v2")}, {Key: []byte("j"), Value: []byte("v3")}})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish after close = %v, want ErrUnavailable", err)
	}
	if elapsed > 15*time.Second {
		t.Errorf("Publish took %s to fail, want a few seconds", elapsed)
	}
	t.Logf("publish to a closed cluster failed after %s: %v", elapsed, err)
}

func TestNewPublisherUnreachable(t *testing.T) {
	c, cfg := startCluster(t)
	c.Close()
	start := time.Now()
	_, err := NewPublisher(cfg, "x")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("NewPublisher = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("NewPublisher took %s to fail", d)
	}
}

func TestPublishAfterClose(t *testing.T) {
	_, cfg := startCluster(t)
	newTopic(t, cfg, "closed", 1)
	p := newPublisher(t, cfg, "closed")
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	err := p.Publish(context.Background(), []Message{{Value: []byte("v")}})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish after Close = %v, want ErrUnavailable", err)
	}
}

// useTraceContext installs the W3C propagator for the duration of the test.
func useTraceContext(t *testing.T) {
	t.Helper()
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
}

func remoteSpanContext(t *testing.T) trace.SpanContext {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, err := trace.ParseTraceState("vendor=value")
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    tid,
		SpanID:     sid,
		TraceFlags: trace.FlagsSampled,
		TraceState: ts,
		Remote:     true,
	})
}

func TestInjectExtractHeaders(t *testing.T) {
	useTraceContext(t)
	sc := remoteSpanContext(t)
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)

	orig := []sarama.RecordHeader{{Key: []byte("traceparent"), Value: []byte("stale")}, {Key: []byte("x"), Value: []byte("y")}}
	hs := InjectHeaders(ctx, orig)
	if string(orig[0].Value) != "stale" {
		t.Fatal("InjectHeaders modified its argument")
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var n int
	for _, h := range hs {
		if string(h.Key) == "traceparent" {
			n++
			if string(h.Value) != want {
				t.Errorf("traceparent = %q, want %q", h.Value, want)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d traceparent headers, want 1", n)
	}

	got := trace.SpanContextFromContext(ExtractContext(context.Background(), franzHeaders(hs)))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() {
		t.Errorf("extracted %v, want %v", got, sc)
	}
	if got.TraceState().Get("vendor") != "value" {
		t.Errorf("tracestate = %q", got.TraceState().String())
	}

	// No trace headers: the context is returned without a span context.
	if trace.SpanContextFromContext(ExtractContext(context.Background(), nil)).IsValid() {
		t.Error("extracted a span context from no headers")
	}
}

func TestTraceContextThroughKafka(t *testing.T) {
	useTraceContext(t)
	_, cfg := startCluster(t)
	newTopic(t, cfg, "traced", 1)
	p := newPublisher(t, cfg, "traced")

	sc := remoteSpanContext(t)
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	msg := Message{Key: []byte("k"), Value: []byte("v"), Headers: InjectHeaders(ctx, nil)}
	if err := p.Publish(ctx, []Message{msg}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := consumeAll(t, cfg, "traced", 1)[0]
	if v, _ := header(got.Headers, "tracestate"); v != "vendor=value" {
		t.Errorf("tracestate header = %q", v)
	}
	hs := make([]sarama.RecordHeader, len(got.Headers))
	for i, h := range got.Headers {
		hs[i] = *h
	}
	out := trace.SpanContextFromContext(ExtractContext(context.Background(), franzHeaders(hs)))
	if out.TraceID() != sc.TraceID() || out.SpanID() != sc.SpanID() {
		t.Errorf("extracted %s/%s, want %s/%s", out.TraceID(), out.SpanID(), sc.TraceID(), sc.SpanID())
	}
}

func TestPublishHonoursContext(t *testing.T) {
	_, cfg := startCluster(t)
	newTopic(t, cfg, "ctx", 1)
	p := newPublisher(t, cfg, "ctx")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Publish(ctx, []Message{{Value: []byte("v")}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestPublisherRecoversAfterRestart checks that a Publisher outlives a
// broker restart: publishing fails while the broker is down and succeeds
// again, without a new Publisher, once it is back.
func TestPublisherRecoversAfterRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dir := t.TempDir() // the log survives the restart, as on a real broker
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.DataDir(dir))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	cfg := DefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	newTopic(t, cfg, "restart", 2)
	p := newPublisher(t, cfg, "restart")
	ctx := context.Background()
	if err := p.Publish(ctx, []Message{{Key: []byte("a"), Value: []byte("1")}}); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	c.Close()
	if err := p.Publish(ctx, []Message{{Key: []byte("a"), Value: []byte("2")}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish while down = %v, want ErrUnavailable", err)
	}

	c, err = kfake.NewCluster(kfake.Ports(port), kfake.DataDir(dir))
	if err != nil {
		t.Fatalf("restarting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := p.Publish(ctx, []Message{{Key: []byte("a"), Value: []byte("3")}, {Key: []byte("b"), Value: []byte("3")}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish after restart still fails: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	offsets, err := EndOffsets(ctx, cfg, "restart")
	if err != nil {
		t.Fatalf("EndOffsets: %v", err)
	}
	if total := offsets[0] + offsets[1]; total < 3 {
		t.Errorf("topic holds %d records after the restart, want at least 3", total)
	}
}

// TestPublisherRoutesKeysAsSarama checks that the publisher's partitioner
// (franz-go's, murmur2) puts every key on the partition sarama's murmur2
// partitioner chose, which earlier versions of Sluice produced with: a key
// keeps its partition across the upgrade, and so its order.
func TestPublisherRoutesKeysAsSarama(t *testing.T) {
	sp := sarama.NewMurmur2Partitioner("t")
	kp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int32{1, 6, 7, 64} {
		for i := 0; i < 2000; i++ {
			k := fmt.Appendf(nil, "item-%d", i)
			want, err := sp.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(k)}, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := kp.Partition(&kgo.Record{Key: k}, int(n)); got != int(want) {
				t.Fatalf("key %s over %d partitions: partition %d, sarama's %d", k, n, got, want)
			}
		}
	}
}
