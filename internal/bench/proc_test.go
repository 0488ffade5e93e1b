package bench

import (
	"os"
	"path/filepath"
	"reflect"
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
