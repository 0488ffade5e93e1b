package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// HTTP server settings of Serve.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	// ShutdownTimeout bounds how long Serve waits for requests in flight.
	ShutdownTimeout = 3 * time.Second
)

// ListenAndServe listens on addr and serves h until ctx is done; see Serve.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("query API: listening on %s: %w", addr, err)
	}
	return Serve(ctx, ln, h, log)
}

// Serve serves h on ln until ctx is done, then stops accepting connections,
// waits up to ShutdownTimeout for requests in flight and returns nil. It
// closes ln. A nil log means slog.Default().
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("query API listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("query API: serving http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("query API shutting down", "timeout", ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("query API: shutting down http server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("query API: serving http on %s: %w", ln.Addr(), err)
	}
	return nil
}
