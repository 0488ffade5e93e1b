package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/sluicedata/sluice/internal/telemetry"
)

// Command runs one subcommand with its arguments.
type Command func(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error

// Program is a binary: its name, version, usage text and commands.
type Program struct {
	Name     string
	Version  string
	Usage    string
	Commands map[string]Command
}

// Main runs the program on os.Args until SIGINT or SIGTERM and exits 1 on
// error.
func (p Program) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := p.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, err)
		os.Exit(1)
	}
}

// Run dispatches args[0] to its command with telemetry set up from OTEL_*.
func (p Program) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, p.Usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	logger := NewLogger(stderr)
	slog.SetDefault(logger)
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, p.Name, p.Version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, p.Usage)
		return nil
	}
	fn, ok := p.Commands[cmd]
	if !ok {
		fmt.Fprintln(stderr, p.Usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	shutdownTelemetry, err := telemetry.Setup(ctx, "sluice-"+cmd, p.Version)
	if err != nil {
		return fmt.Errorf("setting up telemetry: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := shutdownTelemetry(sctx); err != nil {
			logger.Warn("flushing telemetry", "err", err)
		}
	}()
	return fn(ctx, rest, stdout, logger)
}

// NewLogger logs text to w at SLUICE_LOG_LEVEL (default info).
func NewLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("SLUICE_LOG_LEVEL")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	if os.Getenv("SLUICE_KAFKA_LOG") != "" {
		// sarama's own log: group joins, rebalances, broker connections.
		sarama.Logger = log.New(w, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
