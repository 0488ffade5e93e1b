package activities

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
)

// TestConsumeSurvivesKafkaRestart: the consume loop (the Consume activity's
// loop, without Temporal) over a broker that stops for a few seconds and
// comes back on the same port with its log: the loop reports the failure
// while the broker is away, reconnects by itself, and MySQL ends with
// every event exactly once, counted once, and offsets at the end.
func TestConsumeSurvivesKafkaRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dir := t.TempDir()
	cluster, err := kfake.NewCluster(kfake.Ports(port), kfake.DataDir(dir))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	var clusterMu sync.Mutex
	t.Cleanup(func() {
		clusterMu.Lock()
		cluster.Close()
		clusterMu.Unlock()
	})
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers = cluster.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic = "events"
	if err := kafka.EnsureTopic(ctx, kcfg, topic, 3, 1); err != nil {
		t.Fatal(err)
	}
	publish := func(from, n int) {
		t.Helper()
		pub, err := kafka.NewPublisher(kcfg, topic)
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		now := time.Now().UTC().Format(time.RFC3339)
		msgs := make([]kafka.Message, 0, n)
		for i := from; i < from+n; i++ {
			msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "r%d", i%40), Value: fmt.Appendf(nil,
				`{"event_id":"e%d","type":"share","occurred_at":%q,"user_id":"u%d","item_id":"r%d","channel":"wechat"}`, i, now, i%97, i%40)})
		}
		if err := pub.Publish(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	publish(0, 3000)

	db, _ := mysqltest.New(t)
	acts, err := New(Deps{DB: db, Kafka: kcfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var (
		progMu   sync.Mutex
		lastProg ConsumeProgress
	)
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := acts.ConsumeLoop(loopCtx, ConsumeInput{Pipeline: "restart", Topic: topic, BatchSize: 500}, func(p ConsumeProgress) {
			progMu.Lock()
			lastProg = p
			progMu.Unlock()
		})
		done <- err
	}()
	committed := func() int64 {
		offs, err := store.LoadOffsets(ctx, db, "restart", topic)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, o := range offs {
			sum += o
		}
		return sum
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			select {
			case err := <-done:
				t.Fatalf("the consume loop returned while waiting for %s: %v", what, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	waitFor("the first 3,000 events", func() bool { return committed() == 3000 })

	clusterMu.Lock()
	cluster.Close()
	clusterMu.Unlock()
	waitFor("the loop to report Kafka's absence", func() bool {
		progMu.Lock()
		defer progMu.Unlock()
		return lastProg.LastError != ""
	})
	progMu.Lock()
	t.Logf("while Kafka was down: last_error %q", lastProg.LastError)
	progMu.Unlock()
	time.Sleep(2 * time.Second)

	clusterMu.Lock()
	cluster, err = kfake.NewCluster(kfake.Ports(port), kfake.DataDir(dir))
	clusterMu.Unlock()
	if err != nil {
		t.Fatalf("restarting kfake: %v", err)
	}
	publish(3000, 3000)
	waitFor("all 6,000 events after the restart", func() bool { return committed() == 6000 })

	var rows, counted int64
	if err := db.GetContext(ctx, &rows, "SELECT COUNT(*) FROM events"); err != nil {
		t.Fatal(err)
	}
	if err := db.GetContext(ctx, &counted, "SELECT COALESCE(SUM(cnt), 0) FROM item_counts_minute"); err != nil {
		t.Fatal(err)
	}
	if rows != 6000 || counted != 6000 {
		t.Fatalf("events %d rows, item_counts_minute sums to %d; want 6000 and 6000", rows, counted)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("consume loop: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the consume loop did not stop within 15 s of cancellation")
	}
}
