package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat CPU times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// memMB reads VmRSS and VmHWM (peak RSS) of a process, in MiB.
func memMB(pid int) (rss, hwm float64) {
	m := memStatus(pid)
	return m.rss, m.hwm
}

// memStat is a process's memory as /proc/<pid>/status reports it, in MiB.
type memStat struct {
	rss, hwm, anon, file float64
}

func memStatus(pid int) (m memStat) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		var dst *float64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &m.rss
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &m.hwm
		case strings.HasPrefix(line, "RssAnon:"):
			dst = &m.anon
		case strings.HasPrefix(line, "RssFile:"):
			dst = &m.file
		default:
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			*dst = kb / 1024
		}
	}
	return m
}

// cpuSeconds is the user+system CPU time a process has used so far.
func cpuSeconds(pid int) float64 {
	u, s := cpuTimes(pid)
	return u + s
}

// cpuTimes is the user and system CPU time a process has used so far.
func cpuTimes(pid int) (user, sys float64) {
	if pid <= 0 {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ut / clockTicks, st / clockTicks
}

// machineCPUSeconds is the busy (non-idle) CPU time of the whole machine,
// and the number of CPUs.
func machineCPUSeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / clockTicks
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuMeter measures the CPU used by a few processes and the machine over
// one phase, and the work the MySQL server counted meanwhile.
type cpuMeter struct {
	pids   map[string]int
	start  map[string][2]float64
	mach   float64
	at     time.Time
	db     *sqlx.DB
	status map[string]int64 // statusCounters at the start
}

func newCPUMeter(ctx context.Context, db *sqlx.DB, pids map[string]int) *cpuMeter {
	m := &cpuMeter{pids: map[string]int{}, start: map[string][2]float64{}, mach: machineCPUSeconds(), at: time.Now(),
		db: db, status: globalStatus(ctx, db, statusCounters...)}
	for name, pid := range pids {
		if pid > 0 {
			m.pids[name] = pid
			u, s := cpuTimes(pid)
			m.start[name] = [2]float64{u, s}
		}
	}
	return m
}

// CPUUse is the CPU time processes used during a phase.
type CPUUse struct {
	WallSeconds    float64            `json:"wall_s"`
	MachineSeconds float64            `json:"machine_cpu_s"`
	Process        map[string]float64 `json:"process_cpu_s"`
	ProcessSys     map[string]float64 `json:"process_sys_cpu_s"`
	// MySQL is the change of the server's statusCounters over the phase
	// (nil when they could not be read). On a shared server other
	// clients' work counts too.
	MySQL map[string]int64 `json:"mysql_status,omitempty"`
}

func (m *cpuMeter) stop(ctx context.Context) CPUUse {
	u := CPUUse{WallSeconds: time.Since(m.at).Seconds(), MachineSeconds: machineCPUSeconds() - m.mach,
		Process: map[string]float64{}, ProcessSys: map[string]float64{}}
	for name, pid := range m.pids {
		us, sy := cpuTimes(pid)
		u.Process[name] = us + sy - m.start[name][0] - m.start[name][1]
		u.ProcessSys[name] = sy - m.start[name][1]
	}
	if end := globalStatus(ctx, m.db, statusCounters...); end != nil && m.status != nil {
		u.MySQL = make(map[string]int64, len(end))
		for k, v := range end {
			u.MySQL[k] = v - m.status[k]
		}
	}
	return u
}

func (u CPUUse) String() string {
	var parts []string
	for _, name := range []string{"mysqld", "worker", "bench"} {
		if v, ok := u.Process[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f s (sys %.1f)", name, v, u.ProcessSys[name]))
		}
	}
	return fmt.Sprintf("CPU over %.1f s wall: machine %.1f s busy (of %.1f s on %d cores); %s", u.WallSeconds, u.MachineSeconds,
		u.WallSeconds*float64(numCPU()), numCPU(), strings.Join(parts, ", "))
}

// workerProc is a `sluice worker` child process.
type workerProc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}

	mu      sync.Mutex
	peakRSS float64
	atPeak  memStat // the sample with the highest VmRSS
}

func startWorker(bin string, args []string, logPath string) (*workerProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "SLUICE_LOG_LEVEL=info", "OTEL_SDK_DISABLED=true", "SLUICE_KAFKA_LOG="+os.Getenv("SLUICE_KAFKA_LOG"))
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s worker: %w", bin, err)
	}
	w := &workerProc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(w.done) }()
	return w, nil
}

func (w *workerProc) pid() int { return w.cmd.Process.Pid }

func (w *workerProc) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// sample records the current RSS in the peak.
func (w *workerProc) sample() {
	m := memStatus(w.pid())
	w.mu.Lock()
	w.peakRSS = max(w.peakRSS, m.rss, m.hwm)
	if m.rss > w.atPeak.rss {
		w.atPeak = m
	}
	w.mu.Unlock()
}

// sampleEvery samples RSS until ctx ends.
func (w *workerProc) sampleEvery(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		w.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *workerProc) peakSample() memStat {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.atPeak
}

func (w *workerProc) peak() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peakRSS
}

func (w *workerProc) tail(n int) string {
	b, _ := os.ReadFile(w.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGTERM and waits, then SIGKILL.
func (w *workerProc) stop() {
	if w.exited() {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(15 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// cpuProbe times a fixed single-threaded integer workload (best of five,
// in ms). On a shared or throttled virtual machine the same work takes
// longer at times, and so does every phase measured then: comparing the
// probe across phases shows whether the machine's speed changed.
func cpuProbe() float64 {
	best := time.Duration(1 << 62)
	for range 5 {
		t0 := time.Now()
		x := uint64(88172645463325252)
		for range 20_000_000 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		runtime.KeepAlive(x) // keep the work from being optimised away
		best = min(best, time.Since(t0))
	}
	return float64(best.Microseconds()) / 1000
}

// sessions lists the worker's consumer group sessions since t0, from its
// log's "consumer session started" lines: when each began (seconds after
// t0) and the partitions it owned.
func (w *workerProc) sessions(t0 time.Time) []string {
	b, _ := os.ReadFile(w.logPath)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `msg="consumer session started"`) {
			continue
		}
		ts, parts := logField(line, "time"), logField(line, "partitions")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || at.Before(t0) {
			continue
		}
		out = append(out, fmt.Sprintf("%.1fs %s", at.Sub(t0).Seconds(), parts))
	}
	return out
}

// logField returns key's value in a slog text line ("" if absent).
func logField(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		if !strings.HasPrefix(line, key+"=") {
			return ""
		}
		i = -1
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		if j := strings.Index(v[1:], `"`); j >= 0 {
			return v[1 : j+1]
		}
		return v[1:]
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		return v[:j]
	}
	return v
}
