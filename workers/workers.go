// Package workers builds a Temporal worker with every Sluice workflow and
// activity registered. It is the public API a service uses to embed a Sluice
// worker in its own process; `sluice worker` and `sluice dev` use it too.
//
//	w, err := workers.New(ctx, workers.Options{
//		HostPort: "temporal:7233",
//		MySQLDSN: "sluice:secret@tcp(mysql:3306)/sluice",
//		KafkaBrokers: []string{"kafka:9092"},
//	})
//	if err != nil { ... }
//	defer w.Close()
//	err = w.Run(ctx) // until ctx is cancelled
package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/sluicedata/sluice/activities"
	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/workflows"
)

// Options configure a worker. Zero values take the defaults shown.
type Options struct {
	// Client is an existing Temporal client to use; when nil the worker
	// dials HostPort/Namespace and closes the client on Close.
	Client client.Client
	// HostPort of the Temporal frontend (default 127.0.0.1:7233).
	HostPort string
	// Namespace (default "default").
	Namespace string
	// TaskQueue polled by the worker (default "sluice").
	TaskQueue string
	// Identity shown in the Temporal UI (default: the SDK's pid@host).
	Identity string

	// DB is an open handle to Sluice's MySQL database; when nil the worker
	// opens MySQLDSN (default store.DefaultDSN) and closes it on Close.
	DB       *sqlx.DB
	MySQLDSN string
	// KafkaBrokers the consume activities read from (default 127.0.0.1:9092).
	KafkaBrokers []string
	// KafkaVersion is the protocol version to speak (default 2.8.0).
	KafkaVersion string

	// MaxConcurrentActivities bounds activities run at once (default 16).
	MaxConcurrentActivities int
	Logger                  *slog.Logger
}

// DefaultOptions returns the defaults for a local dev stack.
func DefaultOptions() Options {
	return Options{
		HostPort:                "127.0.0.1:7233",
		Namespace:               "default",
		TaskQueue:               workflows.DefaultTaskQueue,
		MySQLDSN:                store.DefaultDSN,
		KafkaBrokers:            []string{"127.0.0.1:9092"},
		MaxConcurrentActivities: 16,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.HostPort == "" {
		o.HostPort = d.HostPort
	}
	if o.Namespace == "" {
		o.Namespace = d.Namespace
	}
	if o.TaskQueue == "" {
		o.TaskQueue = d.TaskQueue
	}
	if o.MySQLDSN == "" {
		o.MySQLDSN = d.MySQLDSN
	}
	if len(o.KafkaBrokers) == 0 {
		o.KafkaBrokers = d.KafkaBrokers
	}
	if o.MaxConcurrentActivities == 0 {
		o.MaxConcurrentActivities = d.MaxConcurrentActivities
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o Options) kafka() kafka.Config {
	return kafka.Config{Brokers: o.KafkaBrokers, Version: o.KafkaVersion, ClientID: "sluice-worker"}
}

// Validate names the first wrong field.
func (o Options) Validate() error {
	o = o.withDefaults()
	if err := o.kafka().Validate(); err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	if o.MaxConcurrentActivities < 1 {
		return fmt.Errorf("workers: MaxConcurrentActivities: must be >= 1, got %d", o.MaxConcurrentActivities)
	}
	return nil
}

// Worker is a Temporal worker with Sluice registered.
type Worker struct {
	opts     Options
	client   client.Client
	db       *sqlx.DB
	worker   worker.Worker
	closeFns []func()
}

// DialTemporal connects to Temporal with Sluice's tracing interceptor and
// logger.
func DialTemporal(ctx context.Context, hostPort, namespace, identity string, logger *slog.Logger) (client.Client, error) {
	if logger == nil {
		logger = slog.Default()
	}
	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating Temporal tracing interceptor: %w", err)
	}
	c, err := client.DialContext(ctx, client.Options{
		HostPort:     hostPort,
		Namespace:    namespace,
		Identity:     identity,
		Logger:       sdklog.NewStructuredLogger(logger),
		Interceptors: []interceptor.ClientInterceptor{tracing},
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to Temporal at %s (namespace %s): %w", hostPort, namespace, err)
	}
	return c, nil
}

// New connects what Options does not provide and registers every workflow
// and activity. It does not start polling; call Run.
func New(ctx context.Context, opts Options) (*Worker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	w := &Worker{opts: opts, client: opts.Client, db: opts.DB}
	if w.db == nil {
		db, err := store.Open(ctx, opts.MySQLDSN)
		if err != nil {
			return nil, err
		}
		w.db = db
		w.closeFns = append(w.closeFns, func() { db.Close() })
	}
	if w.client == nil {
		c, err := DialTemporal(ctx, opts.HostPort, opts.Namespace, opts.Identity, opts.Logger)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.client = c
		w.closeFns = append(w.closeFns, c.Close)
	}
	acts, err := activities.New(activities.Deps{DB: w.db, Kafka: opts.kafka(), Temporal: w.client, Logger: opts.Logger})
	if err != nil {
		w.Close()
		return nil, err
	}
	w.worker = worker.New(w.client, opts.TaskQueue, worker.Options{
		Identity:                           opts.Identity,
		MaxConcurrentActivityExecutionSize: opts.MaxConcurrentActivities,
		// Heartbeat at least every second, so a pause or cancel reaches a
		// long-running consume activity within about a second.
		MaxHeartbeatThrottleInterval:     1500 * time.Millisecond,
		DefaultHeartbeatThrottleInterval: 1500 * time.Millisecond,
		// Give running activities time to stop and report on shutdown, so
		// Temporal retries them at once instead of after a heartbeat timeout.
		WorkerStopTimeout: 8 * time.Second,
	})
	workflows.Register(w.worker)
	activities.Register(w.worker, acts)
	return w, nil
}

// Client is the worker's Temporal client.
func (w *Worker) Client() client.Client { return w.client }

// DB is the worker's MySQL handle.
func (w *Worker) DB() *sqlx.DB { return w.db }

// Run polls until ctx is cancelled, then stops the worker (letting running
// activities finish or report for up to 8 s). It returns nil on a clean stop.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.worker.Start(); err != nil {
		return fmt.Errorf("starting worker on task queue %s: %w", w.opts.TaskQueue, err)
	}
	w.opts.Logger.Info("worker started", "task_queue", w.opts.TaskQueue, "namespace", w.opts.Namespace)
	<-ctx.Done()
	w.worker.Stop()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Close releases what New opened.
func (w *Worker) Close() {
	for i := len(w.closeFns) - 1; i >= 0; i-- {
		w.closeFns[i]()
	}
	w.closeFns = nil
}
