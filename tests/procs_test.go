package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/sluicedata/sluice/internal/devstack"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// workerBinary builds cmd/sluice-worker (the worker without the embedded
// server, as deployed) once per test run and returns its path.
func workerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sluice-worker")
		//lint:ignore SA1019 the test binary runs where it was built, with that toolchain
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(goBin, "build", "-o", binPath, "./cmd/sluice-worker")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building sluice-worker: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// workerProc is a `sluice-worker worker` child process.
type workerProc struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	name string
	done chan struct{}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startWorker runs `sluice worker` against the stack, with extra flags.
func startWorker(t *testing.T, s *devstack.Stack, dsn, name string, extra ...string) *workerProc {
	t.Helper()
	args := append([]string{"worker", "--temporal-address", s.TemporalAddress, "--mysql-dsn", dsn,
		"--kafka-brokers", strings.Join(s.Brokers, ","), "--identity", name}, extra...)
	cmd := exec.Command(workerBinary(t), args...)
	w := &workerProc{cmd: cmd, log: &bytes.Buffer{}, mu: &sync.Mutex{}, name: name, done: make(chan struct{})}
	cmd.Stdout = lockedWriter{w.mu, w.log}
	cmd.Stderr = lockedWriter{w.mu, w.log}
	cmd.Env = append(os.Environ(), "SLUICE_LOG_LEVEL=info", "OTEL_SDK_DISABLED=true")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting worker: %v", err)
	}
	go func() { _ = cmd.Wait(); close(w.done) }()
	t.Cleanup(func() { w.kill() })
	return w
}

func (w *workerProc) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

func (w *workerProc) signal(sig syscall.Signal) { _ = w.cmd.Process.Signal(sig) }

// kill SIGKILLs the process and waits for it to be gone.
func (w *workerProc) kill() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGCONT)
	_ = w.cmd.Process.Kill()
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
	}
}

// rssMB reads the process's resident set size.
func (w *workerProc) rssMB() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

func startPipeline(t *testing.T, s *devstack.Stack, in any) {
	t.Helper()
	if _, err := s.Client.ExecuteWorkflow(context.Background(), clientStartOptions(), "StreamIngestWorkflow", in); err != nil {
		t.Fatalf("starting StreamIngestWorkflow: %v", err)
	}
}

func dataConverter() converter.DataConverter { return converter.GetDefaultDataConverter() }
