package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/schemas"
)

var eventIDPattern = regexp.MustCompile(`^log:[0-9a-f]+-[0-9a-f]+-[0-9a-f]{6,8}:[0-9]+$`)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"ok", func(*Config) {}, ""},
		{"no globs", func(c *Config) { c.Globs = nil }, "Globs"},
		{"blank glob", func(c *Config) { c.Globs = []string{"a", " "} }, "Globs[1]"},
		{"bad glob", func(c *Config) { c.Globs = []string{"[a"} }, "Globs[0]"},
		{"no positions", func(c *Config) { c.PositionsFile = "" }, "PositionsFile"},
		{"no source", func(c *Config) { c.Source = " " }, "Source"},
		{"scan", func(c *Config) { c.ScanInterval = 0 }, "ScanInterval"},
		{"poll", func(c *Config) { c.PollInterval = -1 }, "PollInterval"},
		{"rotate wait", func(c *Config) { c.RotateWait = -1 }, "RotateWait"},
		{"batch lines", func(c *Config) { c.BatchLines = 0 }, "BatchLines"},
		{"batch bytes", func(c *Config) { c.BatchBytes = 0 }, "BatchBytes"},
		{"line bytes", func(c *Config) { c.MaxLineBytes = MaxMaxLineBytes + 1 }, "MaxLineBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Globs = []string{"/var/log/*.log"}
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want error naming %q", err, tt.wantErr)
			}
		})
	}
	if _, err := New(testConfig("p", "x"), nil, nil); err == nil {
		t.Error("New accepted a nil Publisher")
	}
}

func TestSanitizeSource(t *testing.T) {
	for in, want := range map[string]string{
		"web-01.example.com":    "web-01.example.com",
		"  a\x00b\x85c\xff  ":   "a_b_c_",
		strings.Repeat("é", 70): strings.Repeat("é", 64),
		"\x01":                  "_",
		"   ":                   "unknown",
	} {
		if got := sanitizeSource(in); got != want {
			t.Errorf("sanitizeSource(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEventIDPrefix(t *testing.T) {
	const maxU = ^uint64(0)
	worst := eventIDPrefix(fileID{Dev: maxU, Ino: maxU}, 0, []byte("first\n")) + "9223372036854775807"
	if len(worst) > schemas.MaxEventIDLen || !eventIDPattern.MatchString(worst) {
		t.Fatalf("worst-case event ID %q (%d chars) is invalid", worst, len(worst))
	}
	ev := schemas.Event{EventID: worst, Type: "log", OccurredAt: time.Now(), UserID: "u"}
	if err := ev.Validate(time.Now()); err != nil {
		t.Fatalf("worst-case event ID rejected: %v", err)
	}
	id := fileID{Dev: 0x803, Ino: 0x1234}
	a := eventIDPrefix(id, 0, []byte("first\n"))
	if !strings.HasPrefix(a, "log:803-1234-") || len(a) != len("log:803-1234-")+8+1 {
		t.Errorf("prefix %q", a)
	}
	if a != eventIDPrefix(id, 0, []byte("first\n")) {
		t.Error("prefix not deterministic")
	}
	if a == eventIDPrefix(id, 1, []byte("first\n")) || a == eventIDPrefix(id, 0, []byte("other\n")) {
		t.Error("prefix ignores the generation or the first line")
	}
}

func TestEncodeLogAttrs(t *testing.T) {
	long := func(s string, n int) []byte { return []byte(strings.Repeat(s, n)) }
	tests := []struct {
		name          string
		path          string
		line          []byte
		wantTruncated bool
	}{
		{"short", "/var/log/a.log", []byte("hello <world> & \"friends\""), false},
		{"plain long", "/a", long("x", 20000), true},
		{"escaped long", "/a", long("<", 20000), true},
		{"control chars", "/a", long("\x01", 5000), true},
		{"invalid utf8", "/a", long("\xff", 5000), true},
		{"multibyte", "/a", long("é", 6000), true},
		{"long path", strings.Repeat("/dir", 2000), long("y", 9000), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := encodeLogAttrs(tt.path, 42, tt.line, false)
			if len(enc) > schemas.MaxAttrsBytes {
				t.Fatalf("attrs are %d bytes", len(enc))
			}
			var a logAttrs
			if err := json.Unmarshal(enc, &a); err != nil {
				t.Fatal(err)
			}
			if a.Truncated != tt.wantTruncated || a.Offset != 42 {
				t.Fatalf("truncated %v offset %d", a.Truncated, a.Offset)
			}
			if !tt.wantTruncated && a.Line != string(tt.line) {
				t.Fatalf("line %q", a.Line)
			}
			if tt.wantTruncated && len(enc) < schemas.MaxAttrsBytes-64 {
				t.Errorf("attrs cut to %d bytes, far below the limit", len(enc))
			}
			if !utf8.ValidString(a.Line) {
				t.Errorf("line is not valid UTF-8")
			}
			ev := schemas.Event{EventID: "log:1-2-abcdef:0", Type: "log", OccurredAt: time.Now(), UserID: "u", Attrs: enc}
			if err := ev.Validate(time.Now()); err != nil {
				t.Fatalf("event with these attrs is invalid: %v", err)
			}
			// The decoder's canonical form equals what we produced.
			raw, _ := json.Marshal(&ev)
			back, err := schemas.DecodeEvent(raw, time.Now())
			if err != nil || !bytes.Equal(back.Attrs, enc) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

func TestFollowsFilesAndPicksUpNewOnes(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"), filepath.Join(dir, "c.log")
	appendTo(t, a, "alpha one\nalpha two\n")
	appendTo(t, b, "beta one\n")
	appendTo(t, filepath.Join(dir, "ignored.txt"), "not followed\n")
	pos := filepath.Join(dir, "state", "pos.json")
	pub := &fakePub{}
	begin := time.Now()
	r := start(t, testConfig(pos, filepath.Join(dir, "*.log")), pub)

	waitCount(t, pub, 3)
	appendTo(t, a, "alpha three\n")
	appendTo(t, c, "gamma one\n")
	msgs := waitCount(t, pub, 5)
	r.stop(t)

	lines := decodeLogs(t, msgs)
	checkExactlyOnce(t, lines, "alpha one\nalpha two\nbeta one\nalpha three\ngamma one\n")
	wantOffset := map[string]int64{"alpha one": 0, "alpha two": 10, "alpha three": 20, "beta one": 0, "gamma one": 0}
	wantFile := map[string]string{"alpha": a, "beta": b, "gamma": c}
	for _, l := range lines {
		if l.attrs.Offset != wantOffset[l.attrs.Line] {
			t.Errorf("%q: offset %d, want %d", l.attrs.Line, l.attrs.Offset, wantOffset[l.attrs.Line])
		}
		if want := wantFile[strings.Fields(l.attrs.Line)[0]]; l.attrs.File != want {
			t.Errorf("%q: file %q, want %q", l.attrs.Line, l.attrs.File, want)
		}
		if !eventIDPattern.MatchString(l.eventID) || !strings.HasSuffix(l.eventID, fmt.Sprintf(":%d", l.attrs.Offset)) {
			t.Errorf("%q: event_id %q", l.attrs.Line, l.eventID)
		}
		if l.key != "test-host" || l.ev.UserID != "test-host" || l.ev.ItemID != "" {
			t.Errorf("%q: key %q user %q", l.attrs.Line, l.key, l.ev.UserID)
		}
		if l.ev.OccurredAt.Before(begin.Add(-time.Millisecond)) || l.ev.OccurredAt.After(time.Now()) || l.ev.OccurredAt.Location() != time.UTC {
			t.Errorf("%q: occurred_at %v", l.attrs.Line, l.ev.OccurredAt)
		}
	}

	st := r.tl.Stats()
	if st.Lines != 5 || st.Files != 3 || st.Invalid != 0 || st.Bytes != 20+12+9+10 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
	got := readPositions(t, pos)
	if len(got) != 3 || got["a.log"].Offset != 32 || got["b.log"].Offset != 9 || got["c.log"].Offset != 10 {
		t.Errorf("positions %+v", got)
	}
}

func TestPartialLinesWaitForTheirNewline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendTo(t, path, "hel")
	pub := &fakePub{}
	start(t, testConfig(filepath.Join(dir, "pos.json"), path), pub)

	time.Sleep(60 * time.Millisecond)
	if n := pub.count(); n != 0 {
		t.Fatalf("%d records before any newline", n)
	}
	appendTo(t, path, "lo\r\nwor")
	waitCount(t, pub, 1)
	appendTo(t, path, "ld\n\n   \n!\n")
	lines := decodeLogs(t, waitCount(t, pub, 3))
	want := []struct {
		line   string
		offset int64
	}{{"hello", 0}, {"world", 7}, {"!", 18}}
	for i, w := range want {
		if lines[i].attrs.Line != w.line || lines[i].attrs.Offset != w.offset {
			t.Errorf("record %d: %q at %d, want %q at %d", i, lines[i].attrs.Line, lines[i].attrs.Offset, w.line, w.offset)
		}
	}
}

func TestRotationRenameThenCreate(t *testing.T) {
	for _, tc := range []struct {
		name, glob string
		// renamedFollowed: the glob still matches the renamed file, which
		// is thus never forgotten.
		renamedFollowed bool
	}{
		{"glob misses rotated name", "app.log", false},
		{"glob matches rotated name", "app.log*", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			// The writer keeps its descriptor across the rename, as a
			// logger does until it reopens its file.
			w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			write := func(f *os.File, s string) {
				if _, err := f.WriteString(s); err != nil {
					t.Fatal(err)
				}
			}
			write(w, numbered("line", 0, 50))
			pub := &fakePub{}
			r := start(t, testConfig(filepath.Join(dir, "pos.json"), filepath.Join(dir, tc.glob)), pub)
			waitCount(t, pub, 50)

			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			write(w, numbered("line", 50, 60)) // lands in app.log.1
			w2, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer w2.Close()
			write(w2, numbered("line", 60, 100))
			time.Sleep(50 * time.Millisecond) // a few scans later the old file is still written to
			write(w, numbered("line", 100, 105))
			write(w2, numbered("line", 105, 110))

			lines := decodeLogs(t, waitCount(t, pub, 110))
			checkExactlyOnce(t, lines, numbered("line", 0, 110))
			for _, l := range lines {
				var n int
				fmt.Sscanf(l.attrs.Line, "line %d", &n)
				inNew := n >= 60 && n < 100 || n >= 105
				if inNew {
					if want := int64((n - 60) * 10); n < 100 && l.attrs.Offset != want {
						t.Errorf("%q: offset %d in the new file, want %d", l.attrs.Line, l.attrs.Offset, want)
					}
				} else if want := int64(n * 10); n < 60 && l.attrs.Offset != want {
					t.Errorf("%q: offset %d in the old file, want %d", l.attrs.Line, l.attrs.Offset, want)
				}
			}

			wantFiles := 1
			if tc.renamedFollowed {
				wantFiles = 2
				time.Sleep(400 * time.Millisecond) // past RotateWait
			}
			waitFor(t, 2*time.Second, "rotated file to be forgotten", func() bool { return r.tl.Stats().Files == wantFiles })
			r.stop(t)
			got := readPositions(t, filepath.Join(dir, "pos.json"))
			if got["app.log"].Offset != 450 || len(got) != wantFiles {
				t.Errorf("positions %+v", got)
			}
			if tc.renamedFollowed && got["app.log.1"].Offset != 650 {
				t.Errorf("positions %+v", got)
			}
		})
	}
}

func TestCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString(numbered("line", 0, 30)); err != nil {
		t.Fatal(err)
	}
	pub := &fakePub{}
	r := start(t, testConfig(filepath.Join(dir, "pos.json"), path), pub)
	waitCount(t, pub, 30)

	// logrotate's copytruncate: copy, then truncate in place.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".1", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	// Short writes first: the file is found shorter than the offset.
	if _, err := w.WriteString(numbered("line", 30, 35)); err != nil {
		t.Fatal(err)
	}
	waitCount(t, pub, 35)

	// Again, now growing past the old offset before the next look: the
	// changed first bytes give the truncation away.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString(numbered("line", 35, 80)); err != nil {
		t.Fatal(err)
	}
	lines := decodeLogs(t, waitCount(t, pub, 80))
	checkExactlyOnce(t, lines, numbered("line", 0, 80))
	for _, l := range lines {
		var n int
		fmt.Sscanf(l.attrs.Line, "line %d", &n)
		want := int64(n * 10)
		switch {
		case n >= 35:
			want = int64((n - 35) * 10)
		case n >= 30:
			want = int64((n - 30) * 10)
		}
		if l.attrs.Offset != want {
			t.Errorf("%q: offset %d, want %d", l.attrs.Line, l.attrs.Offset, want)
		}
	}
	r.stop(t)
	got := readPositions(t, filepath.Join(dir, "pos.json"))
	if e := got["app.log"]; e.Offset != 450 || e.Generation != 2 {
		t.Errorf("positions %+v", got)
	}
}

func TestRestartResumesFromPositions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	pos := filepath.Join(dir, "pos.json")
	appendTo(t, path, numbered("line", 0, 1000))
	cfg := testConfig(pos, path)
	cfg.BatchLines = 50

	// First run: stopped after five acknowledged batches.
	ctx, cancel := context.WithCancel(context.Background())
	pub1 := &fakePub{onSuccess: func(n int) {
		if n == 5 {
			cancel()
		}
	}}
	r1 := startCtx(t, ctx, cancel, cfg, pub1)
	waitFor(t, 5*time.Second, "first run to stop", func() bool { return ctx.Err() != nil })
	r1.stop(t)
	if n := pub1.count(); n != 250 {
		t.Fatalf("first run shipped %d lines, want 250", n)
	}
	if e := readPositions(t, pos)["app.log"]; e.Offset != 2500 {
		t.Fatalf("saved offset %d, want 2500", e.Offset)
	}

	appendTo(t, path, numbered("line", 1000, 1100)) // while stopped
	pub2 := &fakePub{}
	start(t, cfg, pub2)
	second := waitCount(t, pub2, 850)

	first := decodeLogs(t, pub1.messages())
	all := append(first, decodeLogs(t, second)...)
	checkExactlyOnce(t, all, numbered("line", 0, 1100))
	offsets := map[int64]bool{}
	for _, l := range all {
		if offsets[l.attrs.Offset] {
			t.Errorf("offset %d shipped twice", l.attrs.Offset)
		}
		offsets[l.attrs.Offset] = true
	}
	// Event IDs do not depend on the run.
	if !strings.HasPrefix(all[len(all)-1].eventID, strings.TrimSuffix(first[0].eventID, ":0")) {
		t.Errorf("event IDs %s and %s have different prefixes", first[0].eventID, all[len(all)-1].eventID)
	}
}

func TestFailedPublishDoesNotAdvancePositions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	pos := filepath.Join(dir, "pos.json")
	appendTo(t, path, numbered("line", 0, 100))
	cfg := testConfig(pos, path)
	cfg.BatchLines = 30

	// Every publish fails, though the records may have reached Kafka.
	pub1 := &fakePub{fail: true, deliverOnFail: true}
	r1 := start(t, cfg, pub1)
	waitFor(t, 5*time.Second, "retries", func() bool { return pub1.attemptCount() >= 4 })
	r1.stop(t)
	for i, a := range pub1.attemptList() {
		if len(a) != 30 || string(a[0].Value) != string(pub1.attemptList()[0][0].Value) {
			t.Fatalf("attempt %d: %d records, not the same batch retried", i, len(a))
		}
	}
	if e := readPositions(t, pos)["app.log"]; e.Offset != 0 {
		t.Fatalf("saved offset %d after failed publishes, want 0", e.Offset)
	}
	if st := r1.tl.Stats(); st.Lines != 0 || st.PublishFailures < 3 {
		t.Errorf("stats %+v", st)
	}

	pub2 := &fakePub{}
	start(t, cfg, pub2)
	second := decodeLogs(t, waitCount(t, pub2, 100))
	checkExactlyOnce(t, second, numbered("line", 0, 100))

	// What the failed attempts may have written carries the same event
	// IDs, so downstream deduplication leaves every line exactly once.
	ids := map[string]bool{}
	for _, l := range second {
		ids[l.eventID] = true
	}
	for _, l := range decodeLogs(t, pub1.messages()) {
		if !ids[l.eventID] {
			t.Errorf("failed attempt shipped %q as %s, the retry as another ID", l.attrs.Line, l.eventID)
		}
	}
}

func TestKafkaDownThenUp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendTo(t, path, numbered("line", 0, 100))
	cfg := testConfig(filepath.Join(dir, "pos.json"), path)
	cfg.BatchLines = 10
	pub := &fakePub{fail: true}
	r := start(t, cfg, pub)

	waitFor(t, 5*time.Second, "failed attempts", func() bool { return pub.attemptCount() >= 3 })
	st := r.tl.Stats()
	if st.Pending != 10 || st.Bytes != 100 || st.Lines != 0 {
		t.Fatalf("while down: stats %+v; want one batch of 10 lines (100 bytes) held", st)
	}
	appendTo(t, path, numbered("line", 100, 200))
	// The tailer counts a failure after the fake counts the attempt: wait
	// on the tailer's own count.
	n := r.tl.Stats().PublishFailures
	waitFor(t, 5*time.Second, "more failed attempts", func() bool { return r.tl.Stats().PublishFailures >= n+3 })
	if st := r.tl.Stats(); st.Pending != 10 || st.Bytes != 100 || st.PublishFailures < 6 {
		t.Fatalf("reading did not pause while Kafka is down: stats %+v", st)
	}
	for i, a := range pub.attemptList() {
		if len(a) != 10 || string(a[0].Value) != string(pub.attemptList()[0][0].Value) {
			t.Fatalf("attempt %d: not the same batch retried", i)
		}
	}

	pub.setFail(false)
	lines := decodeLogs(t, waitCount(t, pub, 200))
	checkExactlyOnce(t, lines, numbered("line", 0, 200))
	for i, a := range pub.attemptList() {
		if len(a) > 10 {
			t.Errorf("attempt %d held %d lines", i, len(a))
		}
	}
	if st := r.tl.Stats(); st.Pending != 0 || st.Lines != 200 || st.Bytes != 2000 {
		t.Errorf("after recovery: stats %+v", st)
	}
}

func TestJSONLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.log")
	occurred := time.Now().Add(-time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	valid1 := fmt.Sprintf(`{"event_id":"e-1","type":"view","occurred_at":%q,"user_id":"u-1","item_id":"item-9","attrs":{ "n" : 1 }}`, occurred)
	valid2 := fmt.Sprintf(`  {"event_id":"e-2","type":"signup","occurred_at":%q,"user_id":"u-2"}`, occurred)
	invalid1 := `{"event_id":"bad id!","type":"view"}`
	invalid2 := `  {not json at all`
	plain := `GET /index.html 200 {"not":"an event"}`
	appendTo(t, path, strings.Join([]string{valid1, invalid1, valid2, plain, invalid2}, "\n")+"\n")
	pub := &fakePub{}
	r := start(t, testConfig(filepath.Join(dir, "pos.json"), path), pub)
	msgs := waitCount(t, pub, 5)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := identityOf(fi)
	for i, line := range []string{valid1, valid2} {
		m := msgs[[]int{0, 2}[i]]
		ev, err := schemas.DecodeEvent([]byte(line), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(&ev)
		if !bytes.Equal(m.Value, want) || string(m.Key) != ev.PartitionKey() {
			t.Errorf("valid event %d: key %q value %s, want key %q value %s", i, m.Key, m.Value, ev.PartitionKey(), want)
		}
	}
	for i, line := range []string{invalid1, invalid2} {
		m := msgs[[]int{1, 4}[i]]
		if string(m.Value) != line || string(m.Key) != id.String() {
			t.Errorf("invalid line %d: key %q value %q, want the raw line keyed %q", i, m.Key, m.Value, id.String())
		}
	}
	if l := decodeLogs(t, msgs[3:4])[0]; l.attrs.Line != plain {
		t.Errorf("plain line shipped as %q", l.attrs.Line)
	}
	r.stop(t)
	if st := r.tl.Stats(); st.Lines != 5 || st.Invalid != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestLongLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	content := strings.Repeat("x", 250) + "\nshort\n{" + strings.Repeat("y", 300) + "\nafter\n"
	appendTo(t, path, content)
	cfg := testConfig(filepath.Join(dir, "pos.json"), path)
	cfg.MaxLineBytes = 100
	pub := &fakePub{}
	r := start(t, cfg, pub)
	msgs := waitCount(t, pub, 4)

	first := decodeLogs(t, msgs[0:1])[0]
	if first.attrs.Line != strings.Repeat("x", 100) || !first.attrs.Truncated || first.attrs.Offset != 0 {
		t.Errorf("long line shipped as %+v", first.attrs)
	}
	if l := decodeLogs(t, msgs[1:2])[0]; l.attrs.Line != "short" || l.attrs.Offset != 251 || l.attrs.Truncated {
		t.Errorf("line after the long one: %+v", l.attrs)
	}
	if want := "{" + strings.Repeat("y", 99); string(msgs[2].Value) != want {
		t.Errorf("long JSON line shipped as %q, want its first 100 bytes raw", msgs[2].Value)
	}
	if l := decodeLogs(t, msgs[3:4])[0]; l.attrs.Line != "after" || l.attrs.Offset != int64(len(content)-6) {
		t.Errorf("last line: %+v", l.attrs)
	}

	// A long line arriving in pieces: cut as soon as it exceeds the limit.
	appendTo(t, path, strings.Repeat("z", 150))
	waitCount(t, pub, 5)
	appendTo(t, path, strings.Repeat("z", 150)+"\nnext\n")
	msgs = waitCount(t, pub, 6)
	if l := decodeLogs(t, msgs[4:5])[0]; l.attrs.Line != strings.Repeat("z", 100) || l.attrs.Offset != int64(len(content)) {
		t.Errorf("piecewise long line: %+v", l.attrs)
	}
	if l := decodeLogs(t, msgs[5:6])[0]; l.attrs.Line != "next" {
		t.Errorf("after piecewise long line: %+v", l.attrs)
	}
	r.stop(t)
	if st := r.tl.Stats(); st.Bytes != int64(len(content)+301+5) {
		t.Errorf("stats %+v", st)
	}
}

func TestHugeLogLineFitsAttrs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendTo(t, path, strings.Repeat("<&>", 20000)+"\n")
	pub := &fakePub{}
	start(t, testConfig(filepath.Join(dir, "pos.json"), path), pub)
	l := decodeLogs(t, waitCount(t, pub, 1))[0]
	if !l.attrs.Truncated || len(l.ev.Attrs) > schemas.MaxAttrsBytes || !strings.HasPrefix(l.attrs.Line, "<&><&>") {
		t.Errorf("attrs %d bytes, truncated %v", len(l.ev.Attrs), l.attrs.Truncated)
	}
}

func TestRenameWhileStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	pos := filepath.Join(dir, "pos.json")
	appendTo(t, path, numbered("line", 0, 20))
	cfg := testConfig(pos, path)
	pub1 := &fakePub{}
	r1 := start(t, cfg, pub1)
	waitCount(t, pub1, 20)
	r1.stop(t)

	// Rotated while stopped; the old file got a few more lines first.
	appendTo(t, path, numbered("line", 20, 25))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, numbered("line", 25, 40))

	pub2 := &fakePub{}
	r2 := start(t, cfg, pub2)
	lines := decodeLogs(t, waitCount(t, pub2, 20))
	checkExactlyOnce(t, append(decodeLogs(t, pub1.messages()), lines...), numbered("line", 0, 40))
	waitFor(t, 2*time.Second, "renamed file to be forgotten", func() bool { return r2.tl.Stats().Files == 1 })
	r2.stop(t)
	if got := readPositions(t, pos); len(got) != 1 || got["app.log"].Offset != 150 {
		t.Errorf("positions %+v", got)
	}
}

func TestTruncatedWhileStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	pos := filepath.Join(dir, "pos.json")
	appendTo(t, path, numbered("old", 0, 20))
	cfg := testConfig(pos, path)
	pub1 := &fakePub{}
	r1 := start(t, cfg, pub1)
	waitCount(t, pub1, 20)
	r1.stop(t)

	// Same inode, new content longer than the saved offset.
	if err := os.WriteFile(path, []byte(numbered("new", 0, 30)), 0o644); err != nil {
		t.Fatal(err)
	}
	pub2 := &fakePub{}
	start(t, cfg, pub2)
	second := decodeLogs(t, waitCount(t, pub2, 30))
	checkExactlyOnce(t, second, numbered("new", 0, 30))
	// The new generation's IDs differ from the old ones at equal offsets.
	checkExactlyOnce(t, append(decodeLogs(t, pub1.messages()), second...), numbered("old", 0, 20)+numbered("new", 0, 30))
}

func TestUnterminatedLastLineOfRotatedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendTo(t, path, "one\ntwo")
	cfg := testConfig(filepath.Join(dir, "pos.json"), path)
	cfg.RotateWait = 50 * time.Millisecond
	pub := &fakePub{}
	r := start(t, cfg, pub)
	waitCount(t, pub, 1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	lines := decodeLogs(t, waitCount(t, pub, 2))
	if lines[1].attrs.Line != "two" || lines[1].attrs.Offset != 4 {
		t.Errorf("last line %+v", lines[1].attrs)
	}
	waitFor(t, 2*time.Second, "rotated file to be forgotten", func() bool { return r.tl.Stats().Files == 0 })
}

func TestCorruptPositionsFile(t *testing.T) {
	dir := t.TempDir()
	pos := filepath.Join(dir, "pos.json")
	if err := os.WriteFile(pos, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	tl, err := New(testConfig(pos, filepath.Join(dir, "*.log")), &fakePub{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "positions file") {
		t.Fatalf("Run = %v, want a positions file error", err)
	}
}

func TestTraceContextHeaders(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})

	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendTo(t, path, "a\nb\n")
	pub := &fakePub{}
	r := start(t, testConfig(filepath.Join(dir, "pos.json"), path), pub)
	msgs := waitCount(t, pub, 2)
	r.stop(t)

	var spans []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "tail.batch" {
			spans = append(spans, s)
		}
	}
	if len(spans) == 0 {
		t.Fatal("no tail.batch span")
	}
	traces := map[string]bool{}
	for _, s := range spans {
		traces[s.SpanContext().TraceID().String()] = true
	}
	for _, m := range msgs {
		tp := strings.Split(header(m, "traceparent"), "-")
		if len(tp) != 4 || !traces[tp[1]] {
			t.Errorf("traceparent %q does not carry the trace of a tail.batch span", header(m, "traceparent"))
		}
	}
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// BenchmarkTail measures lines per second from a file to a publisher that
// acknowledges at once.
func BenchmarkTail(b *testing.B) {
	const lines = 200_000
	dir := b.TempDir()
	var content strings.Builder
	for i := range lines {
		fmt.Fprintf(&content, "2026-01-02T03:04:05Z INFO request %d served in 12ms path=/api/v1/items\n", i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path := filepath.Join(dir, fmt.Sprintf("bench-%d.log", i))
		if err := os.WriteFile(path, []byte(content.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		cfg := testConfig(filepath.Join(dir, fmt.Sprintf("pos-%d.json", i)), path)
		tl, err := New(cfg, nopPub{}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- tl.Run(ctx) }()
		for tl.Stats().Lines < lines {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}

type nopPub struct{}

func (nopPub) Publish(context.Context, []kafka.Message) error { return nil }

func TestAppendLogEventMatchesMarshal(t *testing.T) {
	for _, source := range []string{"web-01", `host <"a"> & é`, "\u2028x"} {
		cfg := testConfig("p", "x")
		cfg.Source = source
		tl, err := New(cfg, &fakePub{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range []time.Time{
			time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			time.Date(2026, 1, 2, 3, 4, 5, 120_000, time.UTC),
			time.Date(2026, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
		} {
			ev := schemas.Event{
				EventID: "log:803-1234-abcdef01:42", Type: "log", OccurredAt: at, UserID: tl.source,
				Attrs: encodeLogAttrs("/var/log/a.log", 42, []byte("x <y> \x01 \xff é"), false),
			}
			want, err := json.Marshal(&ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := tl.appendLogEvent(nil, &ev); !bytes.Equal(got, want) {
				t.Errorf("appendLogEvent:\n got %s\nwant %s", got, want)
			}
		}
	}
}
