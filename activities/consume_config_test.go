package activities

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/kafka"
)

// TestConsumerClientOptions: the consumer's franz-go options make a valid
// client (kgo.NewClient checks them), for either start_from.
func TestConsumerClientOptions(t *testing.T) {
	for _, from := range []string{"oldest", "newest"} {
		in := ConsumeInput{Pipeline: "p", Topic: "t", StartFrom: from}.WithDefaults()
		c := &consumer{a: &Activities{kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}}}, in: in, log: slog.New(slog.DiscardHandler)}
		opts, err := c.clientOpts(&groupRun{c: c})
		if err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatalf("start_from %s: %v", from, err)
		}
		cl.Close()
	}
}

// TestGenerationEnds: the group may revoke or lose with no generation (a
// rebalance during the offsets load), and end one twice. Ending one lets a
// writer finish the batch it is writing (its context stays live while it
// takes no new batch), and cancels a writer still busy after the grace.
func TestGenerationEnds(t *testing.T) {
	g := &groupRun{c: &consumer{log: slog.New(slog.DiscardHandler)}, ctx: context.Background(), grace: time.Minute}
	g.lost(context.Background(), nil, nil)
	g.endGeneration()

	start := func() (*generation, context.Context) {
		gctx, cancel := context.WithCancel(context.Background())
		gen := &generation{cancel: cancel, lanes: newLanes(10, time.Second, 1, map[int32]int64{0: -1})}
		g.gen = gen
		return gen, gctx
	}
	ended := func(what string, within time.Duration) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			g.lost(context.Background(), nil, nil)
			g.endGeneration()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(within):
			t.Fatalf("%s: the generation did not end within %s", what, within)
		}
		if g.gen != nil {
			t.Fatalf("%s: the ended generation is still current", what)
		}
	}

	// A writer between batches: it sees the lanes close and leaves with
	// its context live.
	gen, gctx := start()
	liveAtExit := make(chan bool, 1)
	gen.wg.Add(1)
	go func() {
		defer gen.wg.Done()
		for {
			if _, _, ok := gen.lanes.take(gctx, nil); !ok {
				liveAtExit <- gctx.Err() == nil
				return
			}
		}
	}()
	ended("idle writer", 5*time.Second)
	if !<-liveAtExit {
		t.Fatal("the writer's context was cancelled before it left: a batch in flight would have been thrown away")
	}

	// A writer stuck in a batch (MySQL hanging): cancelled after the grace.
	g.grace = 100 * time.Millisecond
	gen, gctx = start()
	gen.wg.Add(1)
	go func() {
		defer gen.wg.Done()
		<-gctx.Done()
	}()
	ended("stuck writer", 5*time.Second)
}

// TestRevokeReleasesBlockedPush: the poll loop lets rebalances run while it
// pushes, so a push blocked on full lanes (MySQL down) returns once the
// revocation ends its generation.
func TestRevokeReleasesBlockedPush(t *testing.T) {
	l := newLanes(1, time.Hour, 1, map[int32]int64{0: -1})
	if !l.push(context.Background(), decoded{}, 10) {
		t.Fatal("first push refused")
	}
	_, cancel := context.WithCancel(context.Background())
	g := &groupRun{c: &consumer{log: slog.New(slog.DiscardHandler)}, gen: &generation{cancel: cancel, lanes: l}, grace: time.Minute}
	pushed := pushBlocked(t, l, decoded{}, 10, "push into full lanes returned at once")
	g.lost(context.Background(), nil, nil)
	select {
	case <-pushed:
	case <-time.After(5 * time.Second):
		t.Fatal("push still blocked after the generation was revoked")
	}
}

// TestBatchBuffersLearnTheRatio: decompression buffers fit the batches seen
// (a batch that grew 6.7 times gets room for 6.7 times and the slack), grow
// at once for a batch that grew more, and shrink only slowly.
func TestBatchBuffersLearnTheRatio(t *testing.T) {
	var b batchBuffers
	compressed := make([]byte, 1000)
	if c := cap(b.GetDecompressBytes(compressed, kgo.CodecLz4)); c < 8000 {
		t.Fatalf("first buffer holds %d bytes, want the 8x guess", c)
	}
	read := func(unc, comp int) {
		b.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, kgo.FetchBatchMetrics{UncompressedBytes: unc, CompressedBytes: comp})
	}
	read(6700, 1000)
	buf := b.GetDecompressBytes(compressed, kgo.CodecLz4)
	if len(buf) != 0 || cap(buf) < 6700+decompressSlack || cap(buf) > 8000+decompressSlack {
		t.Fatalf("after a 6.7x batch: len %d cap %d, want 0 and 7,212-8,512", len(buf), cap(buf))
	}
	read(10000, 1000)
	if c := cap(b.GetDecompressBytes(compressed, kgo.CodecLz4)); c < 10000+decompressSlack {
		t.Fatalf("after a 10x batch: cap %d, want at least 10,512", c)
	}
	read(2000, 1000)
	if c := cap(b.GetDecompressBytes(compressed, kgo.CodecLz4)); c < 9000 {
		t.Fatalf("one 2x batch shrank the buffers to %d at once", c)
	}
	for range 200 {
		read(2000, 1000)
	}
	if c := cap(b.GetDecompressBytes(compressed, kgo.CodecLz4)); c > 3000+decompressSlack {
		t.Fatalf("after many 2x batches: cap %d, want at most 3,512", c)
	}
	read(1000, 1000) // uncompressed: no change
	if c := cap(b.GetDecompressBytes(compressed, kgo.CodecLz4)); c < 2000+decompressSlack {
		t.Fatalf("an uncompressed batch moved the ratio: cap %d", c)
	}
}
