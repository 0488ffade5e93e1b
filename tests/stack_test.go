// Package tests holds Sluice's integration and end-to-end tests. They run
// against real components: the embedded Temporal server, the Kafka wire
// protocol over TCP (the in-process broker, or real brokers when
// SLUICE_TEST_KAFKA_BROKERS is set) and a real MariaDB/MySQL
// (SLUICE_TEST_MYSQL_DSN, default root@tcp(127.0.0.1:3306)/).
package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/devstack"
	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
)

// stackPorts are the ports one test stack uses; a restart reuses them.
type stackPorts struct {
	temporal, ui, kafka int
}

// freeStackPorts finds a Temporal base port whose +1, +2 and +6 are free
// too, and free ports for the UI and the broker. The collector and the
// query API listen on port 0 and report where (Stack.Collector, Stack.API):
// a port picked ahead in the ephemeral range can be handed to an outgoing
// connection before the stack binds it, which failed a test once.
func freeStackPorts(t *testing.T, withUI bool) stackPorts {
	t.Helper()
	var p stackPorts
	for attempt := 0; attempt < 50 && p.temporal == 0; attempt++ {
		base := 20000 + rand.IntN(30000)
		ok := true
		for _, off := range []int{0, 1, 2, 6} {
			if !portFree(base + off) {
				ok = false
				break
			}
		}
		if ok {
			p.temporal = base
		}
	}
	if p.temporal == 0 {
		t.Fatal("no free port range for the embedded Temporal server")
	}
	next := func() int {
		port, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return port
	}
	p.ui = -1
	if withUI {
		p.ui = next()
	}
	p.kafka = next()
	return p
}

func portFree(port int) bool {
	ln, err := listen(port)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("SLUICE_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newStackConfig prepares (without starting) a stack for this test.
func newStackConfig(t *testing.T, withUI bool) (devstack.Config, *sqlx.DB, string) {
	t.Helper()
	db, dsn := mysqltest.New(t)
	p := freeStackPorts(t, withUI)
	cfg := devstack.Config{
		DataDir:       t.TempDir(),
		TemporalPort:  p.temporal,
		UIPort:        p.ui,
		KafkaPort:     p.kafka,
		CollectorAddr: "127.0.0.1:0",
		APIAddr:       "127.0.0.1:0",
		MySQLDSN:      dsn,
		Topic:         "events",
		Pipeline:      "default",
		Partitions:    6,
		Logger:        testLogger(t),
		Out:           io.Discard,
		// Short sessions and flushes keep tests quick; defaults otherwise.
		ConsumeOverrides: activities.ConsumeInput{FlushMillis: 100},
	}
	if brokers := os.Getenv("SLUICE_TEST_KAFKA_BROKERS"); brokers != "" {
		cfg.KafkaBrokers = strings.Split(brokers, ",")
		cfg.Topic = fmt.Sprintf("events-%d", time.Now().UnixNano())
	}
	return cfg, db, dsn
}

func startStack(t *testing.T, cfg devstack.Config) *devstack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := devstack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting dev stack: %v", err)
	}
	return s
}

func stopStack(t *testing.T, s *devstack.Stack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stopping dev stack: %v", err)
	}
	t.Logf("stack stopped in %s", time.Since(start).Round(time.Millisecond))
}

func kafkaConfig(s *devstack.Stack) kafka.Config {
	return kafka.Config{Brokers: s.Brokers, ClientID: "sluice-test"}
}

// waitCaughtUp waits until kafka_offsets equals the topic's end offsets for
// every partition, and returns them.
func waitCaughtUp(t *testing.T, s *devstack.Stack, db *sqlx.DB, topic string, timeout time.Duration) map[int32]int64 {
	t.Helper()
	return waitCaughtUpSampling(t, s, db, topic, timeout, func() {})
}

// waitCaughtUpSampling is waitCaughtUp calling sample between polls.
func waitCaughtUpSampling(t *testing.T, s *devstack.Stack, db *sqlx.DB, topic string, timeout time.Duration, sample func()) map[int32]int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var end, stored map[int32]int64
	for time.Now().Before(deadline) {
		var err error
		end, err = kafka.EndOffsets(context.Background(), kafkaConfig(s), topic)
		if err != nil {
			t.Fatalf("reading end offsets: %v", err)
		}
		stored = loadOffsets(t, db, topic)
		if store.CaughtUp(end, stored) {
			return end
		}
		sample()
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("consumer did not catch up within %s: end offsets %v, kafka_offsets %v", timeout, end, stored)
	return nil
}

func loadOffsets(t *testing.T, db *sqlx.DB, topic string) map[int32]int64 {
	t.Helper()
	out, err := store.LoadOffsets(context.Background(), db, "default", topic)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func queryInt(t *testing.T, db *sqlx.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
