package collector

import (
	"context"
	"reflect"
	"slices"

	"github.com/IBM/sarama"

	"github.com/sluicedata/sluice/internal/kafka"
)

// KafkaPublisher adapts a *kafka.Publisher to the collector's Publisher,
// turning each message's header map into record headers sorted by key.
func KafkaPublisher(p *kafka.Publisher) Publisher {
	return kafkaPublisher{p: p}
}

type kafkaPublisher struct {
	p *kafka.Publisher
}

// Publish converts msgs and publishes them with the kafka.Publisher.
// Messages that share a header map (all of one request do) share one
// converted header slice, which the publisher then converts once too.
func (k kafkaPublisher) Publish(ctx context.Context, msgs []Message) error {
	out := make([]kafka.Message, len(msgs))
	var (
		last    map[string]string
		headers []sarama.RecordHeader
	)
	for i, m := range msgs {
		if i == 0 || !sameMap(m.Headers, last) {
			last, headers = m.Headers, recordHeaders(m.Headers)
		}
		out[i] = kafka.Message{Key: m.Key, Value: m.Value, Headers: headers}
	}
	return k.p.Publish(ctx, out)
}

// sameMap reports whether a and b are the same map (not equal contents).
func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// Ready reports whether the kafka.Publisher can reach its topic.
func (k kafkaPublisher) Ready(ctx context.Context) error {
	return k.p.Ready(ctx)
}

// recordHeaders converts a header map to record headers in key order.
func recordHeaders(m map[string]string) []sarama.RecordHeader {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	hs := make([]sarama.RecordHeader, len(keys))
	for i, k := range keys {
		hs[i] = sarama.RecordHeader{Key: []byte(k), Value: []byte(m[k])}
	}
	return hs
}
