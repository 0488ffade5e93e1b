package cli

import (
	"context"
	"io"
	"log/slog"

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
	if err := fs.Parse(args); err != nil {
		return err
	}
	w, err := workers.New(ctx, workers.Options{HostPort: *addr, Namespace: *namespace, TaskQueue: *taskQueue,
		Identity: *identity, MySQLDSN: *dsn, KafkaBrokers: SplitList(*brokers), MaxConcurrentActivities: *maxActs, Logger: log})
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Run(ctx)
}
