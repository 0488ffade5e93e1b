package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/loadgen"
	"github.com/sluicedata/sluice/schemas"
)

// row is one generated event as the events table stores it, with its
// values already formatted for MySQL.
type row struct {
	date, id, typ, occurred   string
	user, item, channel, city string
	attrs                     []byte // nil: NULL
	partition                 int32
	offset                    int64
}

const mysqlDateTime6 = "2006-01-02 15:04:05.000000"

// generate makes n events with loadgen (fixed seed, no duplicates, no
// invalid events): the same bytes go to Kafka and, decoded and validated,
// to the ceiling table.
func generate(n int, seed int64, runID string) ([]loadgen.Item, error) {
	cfg := loadgen.DefaultConfig()
	cfg.Seed, cfg.Count, cfg.DuplicateRatio, cfg.BadRatio, cfg.RunID = seed, n, 0, 0, runID
	g, err := loadgen.NewGenerator(cfg)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	items := make([]loadgen.Item, n)
	for i := range items {
		items[i] = g.Next(now)
	}
	return items, nil
}

// produce publishes items in order with Sluice's own publisher (what the
// collector uses: idempotent, acks=all, murmur2 keys, lz4) and returns the
// partition and offset each item got.
func produce(ctx context.Context, kcfg kafka.Config, topic string, partitions int32, items []loadgen.Item) ([]int32, []int64, error) {
	pub, err := kafka.NewPublisher(kcfg, topic)
	if err != nil {
		return nil, nil, err
	}
	defer pub.Close()
	const batch = 5000
	msgs := make([]kafka.Message, 0, batch)
	for start := 0; start < len(items); start += batch {
		msgs = msgs[:0]
		for _, it := range items[start:min(start+batch, len(items))] {
			msgs = append(msgs, kafka.Message{Key: []byte(it.Key), Value: it.Payload})
		}
		if err := pub.Publish(ctx, msgs); err != nil {
			return nil, nil, err
		}
	}
	// One producer sending in order: a partition's offsets are the order
	// of its items. The partition is the producer's murmur2 choice.
	part := sarama.NewMurmur2Partitioner(topic)
	parts := make([]int32, len(items))
	offs := make([]int64, len(items))
	next := make([]int64, partitions)
	for i, it := range items {
		p, err := part.Partition(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(it.Key)}, partitions)
		if err != nil {
			return nil, nil, err
		}
		parts[i], offs[i] = p, next[p]
		next[p]++
	}
	return parts, offs, nil
}

// decodeRows validates every item as the consumer does (schemas.DecodeEvent)
// and formats it as an events row.
func decodeRows(items []loadgen.Item, parts []int32, offs []int64) ([]row, error) {
	now := time.Now()
	rows := make([]row, len(items))
	for i, it := range items {
		e, err := schemas.DecodeEvent(it.Payload, now)
		if err != nil {
			return nil, fmt.Errorf("generated event %d does not validate: %w", i, err)
		}
		rows[i] = row{
			date: e.EventDate().Format(time.DateOnly), id: e.EventID, typ: e.Type,
			occurred: e.OccurredAt.UTC().Format(mysqlDateTime6),
			user:     e.UserID, item: e.ItemID, channel: e.Channel, city: e.City,
			attrs: e.Attrs, partition: parts[i], offset: offs[i],
		}
	}
	return rows, nil
}
