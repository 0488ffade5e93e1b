package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicedata/sluice/internal/cli"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/IBM/sarama"

	"github.com/sluicedata/sluice/internal/collector"
	"github.com/sluicedata/sluice/internal/devstack"
	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/loadgen"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/internal/tail"
	"github.com/sluicedata/sluice/schemas"
)

func cmdDev(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	d := devstack.DefaultConfig()
	fs := cli.NewFlagSet("dev", "Run the whole platform on this machine (what `make run` runs).")
	dataDir := fs.String("data-dir", d.DataDir, "directory for Temporal's SQLite file and the broker's data")
	temporalAddr := fs.String("temporal-address", "", "use this Temporal cluster instead of the embedded server")
	temporalPort := fs.Int("temporal-port", d.TemporalPort, "embedded Temporal gRPC port (history, matching, worker use +1, +2, +6)")
	uiPort := fs.Int("ui-port", d.UIPort, "embedded Temporal Web UI port (-1 disables the UI)")
	namespace := fs.String("namespace", d.Namespace, "Temporal namespace")
	taskQueue := fs.String("task-queue", d.TaskQueue, "Temporal task queue")
	brokers := fs.String("kafka-brokers", "", "comma-separated real Kafka brokers (default: start the in-process broker)")
	kafkaPort := fs.Int("kafka-port", d.KafkaPort, "in-process Kafka broker port")
	partitions := fs.Int("partitions", d.Partitions, "partitions of the events topic when it is created")
	topic := fs.String("topic", d.Topic, "Kafka topic of events")
	pipeline := fs.String("pipeline", d.Pipeline, "name of the stream pipeline")
	dsn := fs.String("mysql-dsn", d.MySQLDSN, "MySQL DSN (go-sql-driver format)")
	collectorAddr := fs.String("collector-addr", d.CollectorAddr, "collector listen address")
	token := fs.String("collector-token", "", "bearer token the collector requires (empty: none)")
	apiAddr := fs.String("api-addr", d.APIAddr, "query API listen address (off disables the API)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return devstack.Run(ctx, devstack.Config{
		DataDir: *dataDir, TemporalAddress: *temporalAddr, TemporalPort: *temporalPort, UIPort: *uiPort,
		Namespace: *namespace, TaskQueue: *taskQueue, KafkaBrokers: cli.SplitList(*brokers), KafkaPort: *kafkaPort,
		Partitions: *partitions, Topic: *topic, Pipeline: *pipeline, MySQLDSN: *dsn,
		CollectorAddr: *collectorAddr, CollectorToken: *token, APIAddr: *apiAddr, Logger: log, Out: out,
	})
}

func cmdCollect(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	d := collector.DefaultConfig()
	fs := cli.NewFlagSet("collect", "Run the HTTP collector: POST /v1/events -> Kafka; with --tail, also follow log files and ship their lines.")
	addr := fs.String("addr", d.Addr, "listen address")
	token := fs.String("token", "", "bearer token required on POST /v1/events (empty: none)")
	brokers := fs.String("kafka-brokers", "127.0.0.1:9092", "comma-separated Kafka brokers")
	topic := fs.String("topic", "events", "Kafka topic")
	maxBody := fs.Int("max-body-bytes", int(d.MaxBodyBytes), "largest request body (413 above)")
	maxEvents := fs.Int("max-events", d.MaxEvents, "most events per request (413 above)")
	tailGlobs := fs.String("tail", "", "comma-separated globs of log files to follow and ship to Kafka (empty: none)")
	tailPositions := fs.String("tail-positions", tail.DefaultPositionsFile, "file recording how far each followed file has been acknowledged")
	source := fs.String("source", "", "user_id of events made from plain log lines (empty: the host name)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d.Addr, d.Token, d.MaxBodyBytes, d.MaxEvents = *addr, *token, int64(*maxBody), *maxEvents
	pub, err := kafka.NewPublisher(kafka.Config{Brokers: cli.SplitList(*brokers), ClientID: "sluice-collector"}, *topic)
	if err != nil {
		return err
	}
	defer pub.Close()
	srv, err := collector.New(d, collector.KafkaPublisher(pub), log)
	if err != nil {
		return err
	}
	var tailer *tail.Tailer
	if globs := cli.SplitList(*tailGlobs); len(globs) > 0 {
		tc := tail.DefaultConfig()
		tc.Globs, tc.PositionsFile = globs, *tailPositions
		if *source != "" {
			tc.Source = *source
		}
		if tailer, err = tail.New(tc, pub, log); err != nil {
			return err
		}
	}
	log.Info("collector listening", "addr", d.Addr, "topic", *topic)
	if tailer == nil {
		return srv.ListenAndServe(ctx)
	}
	// Serve and tail until ctx ends or either fails, which stops the other.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- srv.ListenAndServe(ctx) }()
	go func() { errc <- tailer.Run(ctx) }()
	err = <-errc
	cancel()
	if err2 := <-errc; err == nil {
		err = err2
	}
	return err
}

func cmdMigrate(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs := cli.NewFlagSet("migrate", "Apply MySQL migrations and create daily partitions from yesterday through --days-ahead.")
	dsn := fs.String("mysql-dsn", store.DefaultDSN, "MySQL DSN")
	ahead := fs.Int("days-ahead", 7, "daily partitions to keep ahead of today")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := schemas.Migrate(ctx, db.DB)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "applied migrations: %v\n", applied)
	added, err := store.EnsureStreamPartitions(ctx, db, time.Now(), *ahead)
	if err != nil {
		return err
	}
	for _, t := range store.PartitionedTables {
		fmt.Fprintf(out, "%s: added partitions %v\n", t.Table, added[t.Table])
	}
	return nil
}

func cmdLoadgen(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	d := loadgen.DefaultConfig()
	fs := cli.NewFlagSet("loadgen", "Generate synthetic restaurant-sharing events (Zipf-popular restaurants, wechat/qq/app).")
	target := fs.String("target", "http://127.0.0.1:8080/v1/events", "collector URL to POST to (ignored with --to-kafka)")
	token := fs.String("token", "", "bearer token for the collector")
	toKafka := fs.String("kafka-brokers", "", "produce straight to these Kafka brokers instead of the collector")
	topic := fs.String("topic", "events", "Kafka topic (with --kafka-brokers)")
	count := fs.Int("count", 10000, "events to emit, duplicates and bad ones included (0 = until interrupted)")
	rate := fs.Float64("rate", 0, "events per second (0 = as fast as possible)")
	users := fs.Int("users", d.Users, "distinct users")
	items := fs.Int("items", d.Items, "distinct restaurants")
	dup := fs.Float64("dup-ratio", 0.05, "fraction of emitted events that re-send an earlier valid one")
	bad := fs.Float64("bad-ratio", 0.01, "fraction of emitted events that are invalid")
	batch := fs.Int("batch", d.BatchSize, "events per request or produce call")
	seed := fs.Int("seed", int(d.Seed), "random seed")
	spread := fs.Duration("spread", 0, "spread occurred_at over this much past time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := d
	cfg.Count, cfg.Rate, cfg.Users, cfg.Items = *count, *rate, *users, *items
	cfg.DuplicateRatio, cfg.BadRatio, cfg.BatchSize, cfg.Seed, cfg.Spread = *dup, *bad, *batch, int64(*seed), *spread
	if err := cfg.Validate(); err != nil {
		return err
	}
	var sink loadgen.Sink
	if *toKafka != "" {
		sc, err := kafka.Config{Brokers: cli.SplitList(*toKafka), ClientID: "sluice-loadgen"}.Sarama()
		if err != nil {
			return err
		}
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Producer.Return.Successes = true
		sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
		prod, err := sarama.NewSyncProducer(cli.SplitList(*toKafka), sc)
		if err != nil {
			return fmt.Errorf("connecting to Kafka: %w", err)
		}
		defer prod.Close()
		sink = &loadgen.KafkaSink{Producer: prod, Topic: *topic}
	} else {
		sink = &loadgen.HTTPSink{URL: *target, Token: *token, Client: &http.Client{Timeout: 30 * time.Second}}
	}
	start := time.Now()
	stats, err := loadgen.Run(ctx, cfg, sink)
	elapsed := time.Since(start)
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	report := struct {
		loadgen.Stats
		Seconds      float64 `json:"seconds"`
		EventsPerSec float64 `json:"events_per_sec"`
	}{stats, elapsed.Seconds(), float64(stats.Emitted) / elapsed.Seconds()}
	if encErr := enc.Encode(report); encErr != nil && err == nil {
		err = encErr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
