// Package kafkatest starts an in-process Kafka-protocol broker for tests
// and reads topics back.
package kafkatest

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/internal/kafka"
)

// Start runs a one-broker kfake cluster on a random port for the test and
// returns it (to stop it early: Kafka down) and a Config pointing at it.
func Start(t testing.TB) (*kfake.Cluster, kafka.Config) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(cluster.Close)
	cfg := kafka.DefaultConfig()
	cfg.Brokers = cluster.ListenAddrs()
	return cluster, cfg
}

// ReadTo reads every record of topic below the given end offsets.
func ReadTo(t testing.TB, cfg kafka.Config, topic string, ends map[int32]int64) []*sarama.ConsumerMessage {
	t.Helper()
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	c, err := sarama.NewConsumer(cfg.Brokers, sc)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer func() { _ = c.Close() }()
	var out []*sarama.ConsumerMessage
	for p, end := range ends {
		if end == 0 {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition %d: %v", p, err)
		}
		timeout := time.After(15 * time.Second)
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				done = m.Offset+1 >= end
			case <-timeout:
				t.Fatalf("timed out reading partition %d", p)
			}
		}
		_ = pc.Close()
	}
	return out
}
