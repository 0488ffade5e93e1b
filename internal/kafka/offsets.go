package kafka

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"
)

// TimeOffset is where one partition stands relative to a point in time.
type TimeOffset struct {
	Partition int32 `json:"partition"`
	// Offset is the first offset whose record timestamp is at or after the
	// time, or End when no record is that new.
	Offset int64 `json:"offset"`
	// Found is false when no record is that new (Offset is then End).
	Found bool `json:"found"`
	// Oldest is the log start offset: records below it were deleted by
	// retention (or never existed).
	Oldest int64 `json:"oldest"`
	// End is the high water mark when the offsets were listed.
	End int64 `json:"end"`
}

// OffsetsForTime resolves, for every partition of topic, the first offset
// whose record timestamp is at or after t, with the broker's ListOffsets by
// timestamp (what Kafka's own consumers use to seek to a time). Record
// timestamps are the producer's CreateTime unless the topic says
// LogAppendTime; with CreateTime they need not grow with the offset, and
// the answer is the first offset of the first batch reaching t, as Kafka
// defines it. A partition with no record that new resolves to its end
// offset, so that consuming from the answer reads exactly the records
// produced at or after t. The result is sorted by partition.
func OffsetsForTime(ctx context.Context, cfg Config, topic string, t time.Time) ([]TimeOffset, error) {
	if t.UnixMilli() < 0 {
		return nil, fmt.Errorf("resolving offsets of %s: time %s is before 1970", topic, t.Format(time.RFC3339))
	}
	sc, err := cfg.Sarama()
	if err != nil {
		return nil, fmt.Errorf("resolving offsets of %s: %w", topic, err)
	}
	var out []TimeOffset
	err = runCtx(ctx, func() error {
		client, err := sarama.NewClient(cfg.Brokers, sc)
		if err != nil {
			return fmt.Errorf("connecting to kafka %v: %w", cfg.Brokers, classify(err))
		}
		defer func() { _ = client.Close() }()
		parts, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("listing partitions of %s: %w", topic, classify(err))
		}
		res := make([]TimeOffset, 0, len(parts))
		for _, p := range parts {
			to := TimeOffset{Partition: p}
			// End first: a record produced after this call may have a
			// timestamp >= t and an offset >= End; resolving by time after
			// reading End keeps Offset <= End either way.
			if to.End, err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
				return fmt.Errorf("reading end offset of %s/%d: %w", topic, p, classify(err))
			}
			if to.Oldest, err = client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
				return fmt.Errorf("reading oldest offset of %s/%d: %w", topic, p, classify(err))
			}
			off, err := client.GetOffset(topic, p, t.UnixMilli())
			if err != nil {
				return fmt.Errorf("listing offsets of %s/%d by time %s: %w", topic, p, t.Format(time.RFC3339Nano), classify(err))
			}
			// -1: no record at or after t (Kafka answers offset -1).
			switch {
			case off < 0 || off >= to.End:
				to.Offset = to.End
			default:
				to.Offset, to.Found = off, true
			}
			res = append(res, to)
		}
		sort.Slice(res, func(i, j int) bool { return res[i].Partition < res[j].Partition })
		out = res
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
