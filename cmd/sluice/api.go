package main

import (
	"context"
	"github.com/sluicedata/sluice/internal/cli"
	"io"
	"log/slog"
	"time"

	"github.com/sluicedata/sluice/internal/api"
	"github.com/sluicedata/sluice/internal/store"
)

func cmdAPI(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs := cli.NewFlagSet("api", "Serve the query API: GET /v1/trending, /v1/users/{id}/recommendations, /v1/items/{id}/also-shared (JSON, read from MySQL).")
	listen := fs.String("listen", ":8081", "listen address")
	dsn := fs.String("mysql-dsn", store.DefaultDSN, "MySQL DSN (go-sql-driver format)")
	ttl := fs.Duration("cache-ttl", api.DefaultTTL, "how long answers are reused, except live trending (negative: no cache)")
	liveTTL := fs.Duration("live-cache-ttl", api.DefaultLiveTTL, "how long live trending answers (window=1h) are reused (negative: no cache)")
	maxConns := fs.Int("max-mysql-conns", 32, "MySQL connections open at most")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	// Every connection stays idle-ready: at 100 concurrent clients, opening
	// connections on demand would show in the tail latency.
	db.SetMaxOpenConns(*maxConns)
	db.SetMaxIdleConns(*maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	h := api.New(db, api.Options{TTL: *ttl, LiveTTL: *liveTTL, Logger: log})
	return api.ListenAndServe(ctx, *listen, h, log)
}
