package workers_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/sluicedata/sluice/workers"
)

// A service embeds a Sluice worker next to its own code: build it with the
// service's Temporal, MySQL and Kafka settings, then run it until shutdown.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	w, err := workers.New(ctx, workers.Options{
		HostPort:     "127.0.0.1:7233",
		TaskQueue:    "sluice",
		MySQLDSN:     "root@tcp(127.0.0.1:3306)/sluice",
		KafkaBrokers: []string{"127.0.0.1:9092"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
