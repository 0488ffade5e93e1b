package tests

import (
	"context"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/devstack"
	"github.com/sluicedata/sluice/internal/loadgen"
	"github.com/sluicedata/sluice/workflows"
)

func clientStartOptions() client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: devstack.StreamWorkflowID("default"), TaskQueue: workflows.DefaultTaskQueue}
}

func produce(t *testing.T, s *devstack.Stack, topic string, cfg loadgen.Config) loadgen.Stats {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	prod, err := sarama.NewSyncProducer(s.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	stats, err := loadgen.Run(context.Background(), cfg, &loadgen.KafkaSink{Producer: prod, Topic: topic})
	if err != nil {
		t.Fatalf("producing: %v", err)
	}
	return stats
}

// TestWorkerSIGKILLExactlyOnce runs `sluice worker` as a separate process,
// SIGKILLs it at random points of a 200,000-event stream (and once freezes
// it with SIGSTOP so that Temporal starts a second attempt while the first
// is still alive), and then checks exact totals.
func TestWorkerSIGKILLExactlyOnce(t *testing.T) {
	cfg, db, dsn := newStackConfig(t, false)
	cfg.NoWorker, cfg.NoPipeline = true, true
	s := startStack(t, cfg)
	defer stopStack(t, s)

	// The stream arrives while the workers are being killed.
	produced := make(chan loadgen.Stats, 1)
	go func() {
		lg := loadgen.DefaultConfig()
		lg.Count, lg.DuplicateRatio, lg.BadRatio, lg.Seed, lg.BatchSize, lg.RunID = 200000, 0.05, 0.01, 21, 2000, "crash"
		// Slow enough that the stream outlasts the six kill rounds (about 50 s)
		// even on a fast machine: every kill must land mid-stream.
		lg.Rate = 3000
		produced <- produce(t, s, cfg.Topic, lg)
	}()

	in := workflows.StreamIngestInput{ConsumeInput: activities.ConsumeInput{Pipeline: "default", Topic: cfg.Topic, BatchSize: 2000}, HeartbeatTimeoutSeconds: 3}
	startPipeline(t, s, in)

	w := startWorker(t, s, dsn, "worker-0")
	committed := func() int64 { return queryInt(t, db, "SELECT COALESCE(SUM(next_offset),0) FROM kafka_offsets") }
	for round := 1; round <= 6; round++ {
		// Let it make some progress, then kill it at a random moment.
		base := committed()
		deadline := time.Now().Add(60 * time.Second)
		for committed() == base && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if committed() == base {
			t.Fatalf("round %d: no progress in 60 s; worker log:\n%s", round, w.output())
		}
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
		if round == 3 {
			// A frozen worker: its heartbeats stop, Temporal retries the
			// activity on a new worker, then the old one wakes up and
			// tries to commit: the offset fence must stop it.
			w.signal(syscall.SIGSTOP)
			next := startWorker(t, s, dsn, "worker-3b")
			time.Sleep(5 * time.Second) // > heartbeat timeout
			w.signal(syscall.SIGCONT)
			time.Sleep(2 * time.Second)
			w.kill()
			w = next
			t.Logf("round %d: froze and resumed a worker at %d committed messages", round, committed())
			continue
		}
		w.kill()
		t.Logf("round %d: SIGKILL at %d committed messages", round, committed())
		w = startWorker(t, s, dsn, "worker-"+string(rune('0'+round)))
	}
	stats := <-produced
	waitCaughtUp(t, s, db, cfg.Topic, 180*time.Second)

	if got := queryInt(t, db, "SELECT COUNT(*) FROM events"); got != int64(stats.Valid) {
		t.Errorf("events rows = %d, want %d distinct valid", got, stats.Valid)
	}
	if got := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute"); got != int64(stats.Valid) {
		t.Errorf("sum of counts = %d, want %d", got, stats.Valid)
	}
	if got := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute WHERE type = 'share'"); got != int64(stats.ValidByType["share"]) {
		t.Errorf("share counts = %d, want %d", got, stats.ValidByType["share"])
	}
	if got := queryInt(t, db, "SELECT COUNT(*) FROM dead_letters"); got != int64(stats.Invalid) {
		t.Errorf("dead letters = %d, want %d", got, stats.Invalid)
	}
}

// TestTwoWorkerProcessesSplitPartitions runs the pipeline with parallelism 2
// on two worker processes that can each run one activity: both consume, and
// the totals are exact.
func TestTwoWorkerProcessesSplitPartitions(t *testing.T) {
	cfg, db, dsn := newStackConfig(t, false)
	cfg.NoWorker, cfg.NoPipeline = true, true
	s := startStack(t, cfg)
	defer stopStack(t, s)

	w1 := startWorker(t, s, dsn, "worker-a", "--max-concurrent-activities", "1")
	w2 := startWorker(t, s, dsn, "worker-b", "--max-concurrent-activities", "1")
	in := workflows.StreamIngestInput{ConsumeInput: activities.ConsumeInput{Pipeline: "default", Topic: cfg.Topic}, Parallelism: 2}
	startPipeline(t, s, in)

	// Wait until the group has split the partitions between the two.
	split := func() map[string]activities.ConsumeProgress {
		desc, err := s.Client.DescribeWorkflowExecution(context.Background(), devstack.StreamWorkflowID("default"), "")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]activities.ConsumeProgress{}
		for _, pa := range desc.PendingActivities {
			var p activities.ConsumeProgress
			if pa.HeartbeatDetails == nil {
				continue
			}
			if err := dataConverter().FromPayloads(pa.HeartbeatDetails, &p); err != nil {
				t.Fatal(err)
			}
			out[pa.LastWorkerIdentity] = p
		}
		return out
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := split()
		if len(got["worker-a"].Partitions) > 0 && len(got["worker-b"].Partitions) > 0 {
			t.Logf("partitions split: worker-a %d, worker-b %d", len(got["worker-a"].Partitions), len(got["worker-b"].Partitions))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions not split between the workers within 90 s: %+v\nworker-a log:\n%s\nworker-b log:\n%s", got, w1.output(), w2.output())
		}
		time.Sleep(500 * time.Millisecond)
	}

	lg := loadgen.DefaultConfig()
	lg.Count, lg.DuplicateRatio, lg.BadRatio, lg.Seed, lg.RunID = 30000, 0.05, 0.01, 31, "scale"
	stats := produce(t, s, cfg.Topic, lg)
	waitCaughtUp(t, s, db, cfg.Topic, 120*time.Second)

	if got := queryInt(t, db, "SELECT COUNT(*) FROM events"); got != int64(stats.Valid) {
		t.Errorf("events rows = %d, want %d", got, stats.Valid)
	}
	if got := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute"); got != int64(stats.Valid) {
		t.Errorf("sum of counts = %d, want %d", got, stats.Valid)
	}
	time.Sleep(2 * time.Second) // one more heartbeat with the final counts
	for name, p := range split() {
		t.Logf("%s: slot %d partitions %d messages %d", name, p.Slot, len(p.Partitions), p.Messages)
		if p.Messages == 0 {
			t.Errorf("%s consumed nothing", name)
		}
	}
}
