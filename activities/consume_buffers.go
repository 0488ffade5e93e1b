package activities

import (
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// batchBuffers has the Kafka client decompress each record batch straight
// into a buffer of its own. Without it the client decompresses into a
// shared buffer and copies the result out (slices.Clone of every batch: 13
// % of the worker's CPU in (b) of the benchmark). Nothing is handed back:
// the lanes and the writers hold the records' bytes (the decoded events
// share them) until their batch commits, so every buffer is new, sized by
// how much the batches seen so far grew when decompressed.
type batchBuffers struct {
	// ratio is the decompressed size per compressed byte, in 1/16ths,
	// with a little room on top; 0 until a batch has been read.
	ratio atomic.Int64
}

var (
	_ kgo.PoolDecompressBytes = (*batchBuffers)(nil)
	_ kgo.HookFetchBatchRead  = (*batchBuffers)(nil)
)

// Decompression streams into a bytes.Buffer, which grows (a copy) unless
// this much room is left past the data.
const decompressSlack = 512

// GetDecompressBytes returns an empty buffer for compressed's batch.
func (b *batchBuffers) GetDecompressBytes(compressed []byte, _ kgo.CompressionCodecType) []byte {
	r := b.ratio.Load()
	if r == 0 {
		r = 8 * 16 // JSON events under lz4: 6-7 times
	}
	return make([]byte, 0, int64(len(compressed))*r/16+decompressSlack)
}

// PutDecompressBytes drops buf: the client returns a buffer only when all
// its records are recycled (never here) or its batch failed to decompress.
func (*batchBuffers) PutDecompressBytes([]byte) {}

// OnFetchBatchRead learns the ratio from each batch: at once when a batch
// grew more than expected, slowly when less, so a buffer is rarely too
// small and never far too large.
func (b *batchBuffers) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	if m.CompressedBytes <= 0 || m.UncompressedBytes <= m.CompressedBytes {
		return // not compressed
	}
	seen := int64(m.UncompressedBytes)*16/int64(m.CompressedBytes) + 2 // 1/8 on top
	for {
		cur := b.ratio.Load()
		next := seen
		if cur > seen {
			next = cur - (cur-seen+15)/16
		}
		if next == cur || b.ratio.CompareAndSwap(cur, next) {
			return
		}
	}
}
