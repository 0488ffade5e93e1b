package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogField(t *testing.T) {
	line := `time=2026-12-01T10:26:17.086Z level=INFO msg="consumer session started" partitions="[0 1 2]" stored_offsets=map[]`
	for key, want := range map[string]string{
		"time": "2026-12-01T10:26:17.086Z", "msg": "consumer session started",
		"partitions": "[0 1 2]", "stored_offsets": "map[]", "level": "INFO", "missing": "",
	} {
		if got := logField(line, key); got != want {
			t.Errorf("logField(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestWorkerSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "worker.log")
	log := `time=2026-12-01T10:00:00.000Z level=INFO msg="consumer session started" partitions="[0 1 2 3 4 5]"
time=2026-12-01T10:00:10.500Z level=INFO msg="consumer session started" partitions="[0 1 2 3 4 5]"
time=2026-12-01T10:00:12.000Z level=WARN msg="consumer group session ended" err=x
time=2026-12-01T10:00:13.250Z level=INFO msg="consumer session started" partitions="[0 1 2]"
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	w := &workerProc{logPath: path}
	t0 := time.Date(2026, 12, 1, 10, 0, 10, 0, time.UTC)
	want := []string{"0.5s [0 1 2 3 4 5]", "3.2s [0 1 2]"}
	if got := w.sessions(t0); !reflect.DeepEqual(got, want) {
		t.Fatalf("sessions = %q, want %q", got, want)
	}
}

// TestPostFreshProbes: every event of the load reaches the collector once,
// one in probeEvery is a probe with its own item_id, and only probes get
// send and acknowledgement times.
func TestPostFreshProbes(t *testing.T) {
	load, err := freshLoad(1000, 100*time.Millisecond) // 100 events
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	probes := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var evs []map[string]any
		if err := json.NewDecoder(req.Body).Decode(&evs); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, ev := range evs {
			seen[ev["event_id"].(string)]++
			if strings.HasPrefix(ev["item_id"].(string), freshItemPrefix) {
				probes++
			}
		}
		mu.Unlock()
		fmt.Fprintf(w, `{"accepted":%d}`, len(evs))
	}))
	defer srv.Close()
	sent, acked, posted, failed, err := postFresh(context.Background(), srv.URL, 5000, load)
	if err != nil || failed != 0 {
		t.Fatalf("postFresh: %v (%d failed)", err, failed)
	}
	if posted != 100 || len(seen) != 100 {
		t.Fatalf("posted %d, collector saw %d distinct events, want 100", posted, len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s posted %d times", id, n)
		}
	}
	if want := (100 + probeEvery - 1) / probeEvery; probes != want || len(sent) != want {
		t.Fatalf("%d probes posted, %d tracked, want %d", probes, len(sent), want)
	}
	for i := range sent {
		if sent[i].IsZero() || acked[i].Before(sent[i]) {
			t.Fatalf("probe %d: sent %v, acknowledged %v", i, sent[i], acked[i])
		}
	}
}

func TestWorstSeconds(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	sent := []time.Time{t0.Add(1500 * ms), t0, t0.Add(200 * ms), t0.Add(1100 * ms), t0.Add(2100 * ms), t0.Add(2900 * ms)}
	waits := []time.Duration{900 * ms, 50 * ms, 60 * ms, 100 * ms, 300 * ms, 400 * ms}
	got := worstSeconds(sent, waits, 350*ms, 2)
	want := []freshSecond{
		{At: 1, Max: 900 * ms, Probes: 2, Slow: 1},
		{At: 2, Max: 400 * ms, Probes: 2, Slow: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("worstSeconds = %+v, want %+v", got, want)
	}
	if got := worstSeconds(nil, nil, 0, 3); got != nil {
		t.Errorf("worstSeconds of no probes = %+v, want nil", got)
	}
}

func TestStatusLine(t *testing.T) {
	got := statusLine(map[string]int64{"Com_commit": 50, "Com_load": 50, "Handler_write": 2_230_000, "Handler_update": 0}, 1_000_000)
	want := "MySQL did: Com_commit 50, Com_load 50, Handler_write 2.230/row"
	if got != want {
		t.Fatalf("statusLine = %q, want %q", got, want)
	}
	if got := statusLine(nil, 10); got != "MySQL did: (status not readable)" {
		t.Fatalf("statusLine(nil) = %q", got)
	}
}

func TestRunRejectsBadConsumerSettings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WorkerBinary = "unused"
	cfg.Consume.BatchSize = 100000
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "batch_size: must be 1-50000, got 100000") {
		t.Fatalf("Run with batch size 100000: err %v, want the batch_size rule", err)
	}
}
