package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/workflows"
)

// TestDeadLetterReplayWorkflow: events stamped just over 24 h ahead are
// dead-lettered; once that is no longer true, DeadLetterReplayWorkflow
// ingests them exactly once, and a second replay changes nothing.
func TestDeadLetterReplayWorkflow(t *testing.T) {
	cfg, db, _ := newStackConfig(t, false)
	s := startStack(t, cfg)
	defer stopStack(t, s)

	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(s.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	future := time.Now().UTC().Add(24*time.Hour + 3*time.Second).Format(time.RFC3339)
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 5; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: cfg.Topic, Value: sarama.StringEncoder(fmt.Sprintf(
			`{"event_id":"late-%d","type":"share","occurred_at":%q,"user_id":"u1","item_id":"r9"}`, i, future))})
	}
	msgs = append(msgs, &sarama.ProducerMessage{Topic: cfg.Topic, Value: sarama.StringEncoder("not json at all")})
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s, db, cfg.Topic, 60*time.Second)
	if n := queryInt(t, db, "SELECT COUNT(*) FROM dead_letters"); n != 6 {
		t.Fatalf("dead letters = %d, want 6", n)
	}
	time.Sleep(4 * time.Second) // now they are less than 24 h ahead

	replay := func() activities.ReplayProgress {
		run, err := s.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{TaskQueue: workflows.DefaultTaskQueue},
			workflows.DeadLetterReplayName, activities.ReplayInput{Pipeline: "default", Topic: cfg.Topic})
		if err != nil {
			t.Fatal(err)
		}
		var out activities.ReplayProgress
		if err := run.Get(context.Background(), &out); err != nil {
			t.Fatalf("replay workflow: %v", err)
		}
		return out
	}
	first := replay()
	if first.Ingested != 5 || first.StillInvalid != 1 {
		t.Fatalf("first replay = %+v, want 5 ingested and 1 still invalid", first)
	}
	second := replay()
	if second.Ingested != 0 || second.Scanned != 1 {
		t.Fatalf("second replay = %+v, want nothing new", second)
	}
	if n := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute WHERE item_id = 'r9'"); n != 5 {
		t.Fatalf("counts of r9 = %d, want 5", n)
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM events WHERE item_id = 'r9'"); n != 5 {
		t.Fatalf("events of r9 = %d, want 5", n)
	}
}
