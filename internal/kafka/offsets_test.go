package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestOffsetsForTime produces records with chosen timestamps to chosen
// partitions and resolves offsets for several times through the broker's
// ListOffsets by timestamp.
func TestOffsetsForTime(t *testing.T) {
	_, cfg := startCluster(t)
	const topic = "by-time"
	newTopic(t, cfg, topic, 3)

	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	send := func(p int32, at time.Time) {
		t.Helper()
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: p, Value: sarama.StringEncoder("x"), Timestamp: at}); err != nil {
			t.Fatal(err)
		}
	}
	// p0: base, base+1s, base+2s, base+3s; p1: two old records; p2: empty.
	for i := range 4 {
		send(0, base.Add(time.Duration(i)*time.Second))
	}
	send(1, base.Add(-time.Hour))
	send(1, base.Add(-time.Hour+time.Second))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		at    time.Time
		want  [3]int64
		found [3]bool
	}{
		{base.Add(-2 * time.Hour), [3]int64{0, 0, 0}, [3]bool{true, true, false}},
		{base, [3]int64{0, 2, 0}, [3]bool{true, false, false}},
		{base.Add(1500 * time.Millisecond), [3]int64{2, 2, 0}, [3]bool{true, false, false}},
		{base.Add(time.Second), [3]int64{1, 2, 0}, [3]bool{true, false, false}}, // at, not after
		{base.Add(time.Minute), [3]int64{4, 2, 0}, [3]bool{false, false, false}},
	} {
		got, err := OffsetsForTime(ctx, cfg, topic, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("%s: %d partitions, want 3", tc.at, len(got))
		}
		for i, o := range got {
			if o.Partition != int32(i) || o.Offset != tc.want[i] || o.Found != tc.found[i] || o.Oldest != 0 {
				t.Errorf("at %s partition %d: %+v, want offset %d found %v", tc.at.Format(time.RFC3339Nano), i, o, tc.want[i], tc.found[i])
			}
		}
		if got[0].End != 4 || got[1].End != 2 || got[2].End != 0 {
			t.Errorf("end offsets %+v", got)
		}
	}
	if _, err := OffsetsForTime(ctx, cfg, "no-such-topic", base); err == nil {
		t.Error("unknown topic: no error")
	}
}
