package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/sluicedata/sluice/workers"
)

// Worker is the `worker` command: a Temporal worker with every Sluice
// workflow and activity registered.
func Worker(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	d := workers.DefaultOptions()
	fs := NewFlagSet("worker", "Run a Temporal worker with every Sluice workflow and activity registered.")
	addr := fs.String("temporal-address", d.HostPort, "Temporal frontend host:port")
	namespace := fs.String("namespace", d.Namespace, "Temporal namespace")
	taskQueue := fs.String("task-queue", d.TaskQueue, "Temporal task queue")
	identity := fs.String("identity", "", "worker identity shown in the Temporal UI")
	dsn := fs.String("mysql-dsn", d.MySQLDSN, "MySQL DSN")
	brokers := fs.String("kafka-brokers", "127.0.0.1:9092", "comma-separated Kafka brokers")
	maxActs := fs.Int("max-concurrent-activities", d.MaxConcurrentActivities, "activities run at once")
	pprofAddr := fs.String("pprof-addr", "", "serve Go's /debug/pprof/ profiles on this host:port (empty: off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pprofAddr != "" {
		stop, err := servePprof(*pprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	w, err := workers.New(ctx, workers.Options{HostPort: *addr, Namespace: *namespace, TaskQueue: *taskQueue,
		Identity: *identity, MySQLDSN: *dsn, KafkaBrokers: SplitList(*brokers), MaxConcurrentActivities: *maxActs, Logger: log})
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Run(ctx)
}

// servePprof serves net/http/pprof's handlers on addr until stop.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving pprof", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
