package activities

import (
	"testing"
	"time"

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

// TestCleanupAfterFailedSetup: sarama calls Cleanup when Setup failed (a
// rebalance revoked the session while it read kafka_offsets), before any
// lanes exist; that must not panic the activity, nor may a later Cleanup
// wait on an earlier session's lanes.
func TestCleanupAfterFailedSetup(t *testing.T) {
	h := &handler{c: &consumer{}}
	if err := h.Cleanup(nil); err != nil {
		t.Fatalf("Cleanup without lanes: %v", err)
	}
	h.lanes = newLanes(10, time.Second, 1, map[int32]int64{0: -1})
	if err := h.Cleanup(nil); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if h.lanes != nil {
		t.Fatal("Cleanup left the session's lanes on the handler")
	}
	if err := h.Cleanup(nil); err != nil {
		t.Fatalf("second Cleanup: %v", err)
	}
}
