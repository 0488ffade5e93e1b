package activities

import (
	"testing"

	"github.com/sluicedata/sluice/internal/kafka"
)

// TestConsumerJoinFitsReadTimeout: a JoinGroup the broker holds for the
// whole rebalance timeout must still be answered before the client's read
// deadline, or joins time out forever.
func TestConsumerJoinFitsReadTimeout(t *testing.T) {
	c := &consumer{a: &Activities{kafka: kafka.Config{Brokers: []string{"127.0.0.1:9092"}}}}
	sc, err := c.saramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Consumer.Group.Rebalance.Timeout >= sc.Net.ReadTimeout {
		t.Fatalf("rebalance timeout %s >= read timeout %s", sc.Consumer.Group.Rebalance.Timeout, sc.Net.ReadTimeout)
	}
	if err := sc.Validate(); err != nil {
		t.Fatalf("sarama config: %v", err)
	}
}
