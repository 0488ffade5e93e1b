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

// TestGenerationEndsOnce: the group may revoke or lose with no generation
// (a rebalance during the offsets load), and end one twice;
// none of that may panic or wait on an earlier generation's writers.
func TestGenerationEndsOnce(t *testing.T) {
	g := &groupRun{c: &consumer{log: slog.New(slog.DiscardHandler)}, ctx: context.Background()}
	g.lost(context.Background(), nil, nil)
	g.endGeneration()

	gctx, cancel := context.WithCancel(context.Background())
	gen := &generation{cancel: cancel, lanes: newLanes(10, time.Second, 1, map[int32]int64{0: -1})}
	gen.wg.Add(1)
	go func() {
		defer gen.wg.Done()
		<-gctx.Done() // a writer, until the generation ends
	}()
	g.gen = gen
	done := make(chan struct{})
	go func() {
		g.lost(context.Background(), nil, nil)
		g.endGeneration()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ending the generation did not stop its writer")
	}
	if g.gen != nil {
		t.Fatal("the ended generation is still current")
	}
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
	g := &groupRun{c: &consumer{}, gen: &generation{cancel: cancel, lanes: l}}
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
