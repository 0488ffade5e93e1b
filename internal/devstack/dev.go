// Package devstack runs Sluice's whole platform on one machine: an embedded
// Temporal server and Web UI, an in-process Kafka-protocol broker, MySQL
// migrations, a worker, the collector, the query API and the stream pipeline.
// It is the only package (with tests/) that links the Temporal server and the
// broker.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/api"
	"github.com/sluicedata/sluice/internal/collector"
	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/schedules"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/schemas"
	"github.com/sluicedata/sluice/workers"
	"github.com/sluicedata/sluice/workflows"
)

// Config configures `sluice dev`. Zero values take DefaultConfig's.
type Config struct {
	// DataDir keeps Temporal's SQLite file and the broker's log (default ./.sluice).
	DataDir string
	// Host the embedded services bind (default 127.0.0.1).
	Host string

	// TemporalAddress of an existing cluster; empty starts the embedded server.
	TemporalAddress string
	TemporalPort    int // embedded frontend port (default 7233)
	UIPort          int // embedded Web UI port (default 8233; -1 disables)
	Namespace       string
	TaskQueue       string

	// KafkaBrokers of a real cluster; empty starts the in-process broker.
	KafkaBrokers []string
	KafkaPort    int // in-process broker port (default 9092)
	Partitions   int // partitions of the events topic when Sluice creates it (default 6)
	Topic        string
	Pipeline     string

	MySQLDSN string

	// CollectorAddr is where POST /v1/events listens (default :8080).
	CollectorAddr  string
	CollectorToken string

	// APIAddr is where the query API listens (default :8081; "off" or "-1"
	// disables it).
	APIAddr string
	// API tunes the query API's cache (zero values: its defaults).
	API api.Options

	// PartitionDaysAhead of daily partitions created at start (default 7).
	PartitionDaysAhead int
	// ConsumeOverrides tune the stream pipeline (batch size, writers, ...).
	ConsumeOverrides activities.ConsumeInput
	// NoWorker leaves workers to other processes (`sluice worker`).
	NoWorker bool
	// NoPipeline does not start the stream workflow.
	NoPipeline bool

	Logger *slog.Logger
	// Out receives the summary of where everything listens.
	Out io.Writer
}

// DefaultConfig is what `sluice dev` runs with no flags.
func DefaultConfig() Config {
	return Config{
		DataDir:            ".sluice",
		Host:               "127.0.0.1",
		TemporalPort:       7233,
		UIPort:             8233,
		Namespace:          "default",
		TaskQueue:          workflows.DefaultTaskQueue,
		KafkaPort:          9092,
		Partitions:         6,
		Topic:              "events",
		Pipeline:           "default",
		MySQLDSN:           store.DefaultDSN,
		CollectorAddr:      ":8080",
		APIAddr:            ":8081",
		PartitionDaysAhead: 7,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	seti := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.DataDir, d.DataDir)
	set(&c.Host, d.Host)
	seti(&c.TemporalPort, d.TemporalPort)
	seti(&c.UIPort, d.UIPort)
	set(&c.Namespace, d.Namespace)
	set(&c.TaskQueue, d.TaskQueue)
	seti(&c.KafkaPort, d.KafkaPort)
	seti(&c.Partitions, d.Partitions)
	set(&c.Topic, d.Topic)
	set(&c.Pipeline, d.Pipeline)
	set(&c.MySQLDSN, d.MySQLDSN)
	set(&c.CollectorAddr, d.CollectorAddr)
	set(&c.APIAddr, d.APIAddr)
	seti(&c.PartitionDaysAhead, d.PartitionDaysAhead)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	return c
}

// APIDisabled reports whether an APIAddr value turns the query API off.
func APIDisabled(addr string) bool { return addr == "off" || addr == "-1" }

// StreamWorkflowID is the workflow id of a pipeline's StreamIngestWorkflow.
func StreamWorkflowID(pipeline string) string { return "stream-" + pipeline }

// Stack is a running dev platform.
type Stack struct {
	cfg       Config
	Temporal  *Temporal // nil when an external cluster is used
	Kafka     *Kafka    // nil when real brokers are used
	Brokers   []string
	Client    client.Client
	Worker    *workers.Worker
	Collector string // the collector's base URL
	API       string // the query API's base URL; empty when disabled
	UIURL     string
	// TemporalAddress is the frontend the stack's client uses.
	TemporalAddress string

	publisher *kafka.Publisher
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	errs      chan error
}

// Start brings the platform up and returns once everything is ready and the
// stream pipeline is started (or was already running). Stop it with Stop.
func Start(ctx context.Context, cfg Config) (st *Stack, err error) {
	cfg = cfg.withDefaults()
	log := cfg.Logger
	s := &Stack{cfg: cfg, errs: make(chan error, 4)}
	defer func() {
		if err != nil {
			s.Stop(context.Background())
		}
	}()

	// Every port first, so a busy one fails fast with the flag that moves it.
	if cfg.TemporalAddress == "" {
		if err := checkTemporalPorts(TemporalConfig{Host: cfg.Host, Port: cfg.TemporalPort, UIPort: cfg.UIPort}, "--temporal-port", "--ui-port"); err != nil {
			return nil, err
		}
	}
	if len(cfg.KafkaBrokers) == 0 {
		if err := checkFree(hostPort("127.0.0.1", cfg.KafkaPort), "in-process Kafka broker", "--kafka-port (or --kafka-brokers to use real brokers)"); err != nil {
			return nil, err
		}
	}
	if err := checkFree(cfg.CollectorAddr, "collector HTTP", "--collector-addr"); err != nil {
		return nil, err
	}
	if !APIDisabled(cfg.APIAddr) {
		if err := checkFree(cfg.APIAddr, "query API HTTP", "--api-addr (or --api-addr off)"); err != nil {
			return nil, err
		}
	}

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data dir %s: %w", cfg.DataDir, err)
	}

	// MySQL before anything else is started: it is the most likely to be missing.
	db, err := store.Open(ctx, cfg.MySQLDSN)
	if err != nil {
		return nil, err
	}
	if _, err := schemas.Migrate(ctx, db.DB); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating MySQL: %w", err)
	}
	if _, err := store.EnsureStreamPartitions(ctx, db, time.Now(), cfg.PartitionDaysAhead); err != nil {
		db.Close()
		return nil, err
	}

	// Kafka.
	s.Brokers = cfg.KafkaBrokers
	if len(s.Brokers) == 0 {
		k, err := StartKafka(KafkaConfig{DataDir: filepath.Join(cfg.DataDir, "kafka"), Port: cfg.KafkaPort, Partitions: cfg.Partitions})
		if err != nil {
			db.Close()
			return nil, err
		}
		s.Kafka = k
		s.Brokers = k.Brokers
	}
	kcfg := kafka.Config{Brokers: s.Brokers, ClientID: "sluice-dev"}
	if err := kafka.EnsureTopic(ctx, kcfg, cfg.Topic, int32(cfg.Partitions), 1); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating topic %s: %w", cfg.Topic, err)
	}

	// Temporal.
	temporalAddr := cfg.TemporalAddress
	if temporalAddr == "" {
		t, err := StartTemporal(TemporalConfig{DataDir: filepath.Join(cfg.DataDir, "temporal"), Host: cfg.Host, Port: cfg.TemporalPort, UIPort: cfg.UIPort, Namespace: cfg.Namespace}, log)
		if err != nil {
			db.Close()
			return nil, err
		}
		s.Temporal = t
		temporalAddr = t.Address
		s.UIURL = t.UIURL
	}

	// Worker (or only a client when workers run elsewhere).
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if cfg.NoWorker {
		c, err := workers.DialTemporal(ctx, temporalAddr, cfg.Namespace, "sluice-dev", log)
		if err != nil {
			db.Close()
			return nil, err
		}
		s.Client = c
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			<-runCtx.Done()
			c.Close()
			db.Close()
		}()
	} else {
		w, err := workers.New(ctx, workers.Options{
			HostPort: temporalAddr, Namespace: cfg.Namespace, TaskQueue: cfg.TaskQueue,
			DB: db, KafkaBrokers: s.Brokers, Logger: log,
		})
		if err != nil {
			db.Close()
			return nil, err
		}
		s.Worker = w
		s.Client = w.Client()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := w.Run(runCtx); err != nil {
				s.errs <- fmt.Errorf("worker: %w", err)
			}
			w.Close()
			db.Close()
		}()
	}
	s.TemporalAddress = temporalAddr

	// Collector.
	pub, err := kafka.NewPublisher(kcfg, cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("creating Kafka publisher: %w", err)
	}
	s.publisher = pub
	ccfg := collector.DefaultConfig()
	ccfg.Addr = cfg.CollectorAddr
	ccfg.Token = cfg.CollectorToken
	ccfg.ShutdownTimeout = 3 * time.Second
	srv, err := collector.New(ccfg, collector.KafkaPublisher(pub), log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.CollectorAddr)
	if err != nil {
		return nil, &PortInUseError{Addr: cfg.CollectorAddr, What: "collector HTTP", Flag: "--collector-addr"}
	}
	s.Collector = "http://" + displayAddr(ln.Addr())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(runCtx, ln); err != nil {
			s.errs <- fmt.Errorf("collector: %w", err)
		}
	}()

	// Query API, with its own connection pool so readers never queue
	// behind the stream's writers.
	if !APIDisabled(cfg.APIAddr) {
		if err := s.startAPI(ctx, runCtx); err != nil {
			return nil, err
		}
	}

	if cfg.NoPipeline {
		return s, nil
	}
	// Default schedules (partition maintenance, mining), created once.
	if _, err := schedules.Ensure(ctx, s.Client, cfg.TaskQueue, schedules.Defaults()); err != nil {
		return nil, err
	}
	// The stream pipeline: start it, or keep the one already running.
	in := workflows.StreamIngestInput{ConsumeInput: cfg.ConsumeOverrides}
	in.Pipeline, in.Topic = cfg.Pipeline, cfg.Topic
	if _, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       StreamWorkflowID(cfg.Pipeline),
		TaskQueue:                cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.StreamIngestName, in); err != nil {
		return nil, fmt.Errorf("starting %s: %w", workflows.StreamIngestName, err)
	}
	return s, nil
}

func (s *Stack) startAPI(ctx, runCtx context.Context) error {
	cfg := s.cfg
	db, err := store.Open(ctx, cfg.MySQLDSN)
	if err != nil {
		return fmt.Errorf("query API: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		db.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			return &PortInUseError{Addr: cfg.APIAddr, What: "query API HTTP", Flag: "--api-addr (or --api-addr off)"}
		}
		return fmt.Errorf("query API: listening on %s: %w", cfg.APIAddr, err)
	}
	opts := cfg.API
	if opts.Logger == nil {
		opts.Logger = cfg.Logger
	}
	h := api.New(db, opts)
	s.API = "http://" + displayAddr(ln.Addr())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer db.Close()
		if err := api.Serve(runCtx, ln, h, cfg.Logger); err != nil {
			s.errs <- err
		}
	}()
	return nil
}

// Errors reports a component that stopped on its own.
func (s *Stack) Errors() <-chan error { return s.errs }

// PrintSummary writes where everything listens.
func (s *Stack) PrintSummary(w io.Writer) {
	c := s.cfg
	fmt.Fprintln(w, "Sluice dev stack is up.")
	if s.UIURL != "" {
		fmt.Fprintf(w, "  Temporal Web UI   %s/namespaces/%s/workflows\n", s.UIURL, c.Namespace)
	}
	if s.Temporal != nil {
		fmt.Fprintf(w, "  Temporal gRPC     %s (embedded, data in %s)\n", s.Temporal.Address, filepath.Join(c.DataDir, "temporal"))
	} else {
		fmt.Fprintf(w, "  Temporal gRPC     %s\n", c.TemporalAddress)
	}
	fmt.Fprintf(w, "                    namespace %s, task queue %s\n", c.Namespace, c.TaskQueue)
	if s.Kafka != nil {
		fmt.Fprintf(w, "  Kafka             %s (in-process broker, data in %s)\n", s.Brokers[0], filepath.Join(c.DataDir, "kafka"))
	} else {
		fmt.Fprintf(w, "  Kafka             %v\n", s.Brokers)
	}
	fmt.Fprintf(w, "                    topic %s\n", c.Topic)
	fmt.Fprintf(w, "  MySQL             %s\n", redactDSN(c.MySQLDSN))
	fmt.Fprintf(w, "  Collector         POST %s/v1/events   (GET /healthz, /readyz)\n", s.Collector)
	if s.API != "" {
		fmt.Fprintf(w, "  Query API         GET  %s/v1/trending?window=1h|24h|7d&city=&limit=\n", s.API)
		fmt.Fprintln(w, "                    GET  /v1/users/{id}/recommendations, /v1/items/{id}/also-shared")
	}
	fmt.Fprintf(w, "  Stream pipeline   %s %s: topic %s -> MySQL\n", workflows.StreamIngestName, StreamWorkflowID(c.Pipeline), c.Topic)
	for _, d := range schedules.Defaults() {
		fmt.Fprintf(w, "  Schedule          %s: %s at cron %q (UTC)\n", d.ID, d.Workflow, d.Cron)
	}
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}

// Stop shuts everything down in reverse order within ctx's deadline.
func (s *Stack) Stop(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		if s.publisher != nil {
			_ = s.publisher.Close()
		}
		if s.Temporal != nil {
			s.Temporal.Stop()
		}
		if s.Kafka != nil {
			s.Kafka.Close()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("shutdown did not finish in time")
	}
}

// Run starts the stack, prints the summary and runs until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	start := time.Now()
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	s.PrintSummary(cfg.Out)
	fmt.Fprintf(cfg.Out, "(ready in %s)\n", time.Since(start).Round(10*time.Millisecond))
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-s.Errors():
	}
	fmt.Fprintln(cfg.Out, "Stopping...")
	stopCtx, cancel := context.WithTimeout(context.Background(), 9*time.Second)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func redactDSN(dsn string) string {
	cfg, err := store.ParseDSN(dsn)
	if err != nil {
		return dsn
	}
	if cfg.Passwd != "" {
		cfg.Passwd = "****"
	}
	return cfg.User + "@" + cfg.Net + "(" + cfg.Addr + ")/" + cfg.DBName
}
