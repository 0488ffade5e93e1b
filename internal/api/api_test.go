package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/testutil/mysqltest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func exec(t *testing.T, db *sqlx.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func day(t time.Time, offset int) string {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, offset).Format("2006-01-02")
}

// seed loads the test dataset relative to now (a real recent time, so the
// daily partitions mysqltest created hold it).
func seed(t *testing.T, db *sqlx.DB, now time.Time) {
	t.Helper()
	// Mining runs: the newest succeeded run of each job is current; a newer
	// failed co_share run and a newer running recommend run are ignored.
	for _, r := range []struct {
		id          int
		job, status string
	}{
		{1, "co_share", "succeeded"},
		{2, "recommend", "succeeded"},
		{3, "co_share", "succeeded"},
		{4, "recommend", "succeeded"},
		{5, "co_share", "failed"},
		{6, "recommend", "running"},
		{7, "trending", "succeeded"},
	} {
		exec(t, db, `INSERT INTO mining_runs (run_id, job, window_from, window_to, params, status, workflow_id, workflow_run_id, started_at)
			VALUES (?, ?, ?, ?, '{}', ?, 'wf', ?, ?)`, r.id, r.job, day(now, -7), day(now, -1), r.status, fmt.Sprint("run-", r.id), now)
	}
	exec(t, db, `ALTER TABLE co_shares ADD PARTITION (PARTITION p1 VALUES IN (1), PARTITION p3 VALUES IN (3), PARTITION p5 VALUES IN (5))`)
	exec(t, db, `ALTER TABLE recommendations ADD PARTITION (PARTITION p2 VALUES IN (2), PARTITION p4 VALUES IN (4), PARTITION p6 VALUES IN (6))`)
	exec(t, db, `INSERT INTO co_shares (run_id, item_id, rank_no, other_item_id, support, confidence, lift) VALUES
		(1, 'r1', 1, 'old', 99, 0.9, 9),
		(3, 'r1', 1, 'r2', 12, 0.5, 2.25),
		(3, 'r1', 2, 'r3', 7, 0.25, 1.5),
		(3, 'r1', 3, 'r4', 3, 0.125, 1),
		(3, 'r2', 1, 'r1', 12, 0.75, 2.25),
		(3, 'r 1/x', 1, 'r<&>', 2, 1, 4),
		(5, 'r1', 1, 'failed', 50, 0.9, 9)`)
	exec(t, db, `INSERT INTO recommendations (run_id, user_id, rank_no, item_id, score, reason, via) VALUES
		(2, 'u1', 1, 'old', 9, 'co_share', 'r1'),
		(4, 'u1', 1, 'r2', 3.5, 'co_share', 'r1'),
		(4, 'u1', 2, 'r3', 1.25, 'co_share', 'r1'),
		(4, 'u1', 3, 'r7', 0.5, 'trending', 'shanghai'),
		(4, 'u2', 1, 'r1', 2, 'co_share', 'r2'),
		(6, 'u1', 1, 'running', 9, 'co_share', 'r1')`)

	// trending_daily: see TestTrendingDaily for the expected sums.
	for _, r := range []struct {
		day           int
		city          string
		rank          int
		item          string
		users, shares int
	}{
		{0, "", 1, "A", 5, 9},
		{0, "", 2, "B", 3, 3},
		{0, "", 3, "E", 1, 1},
		{0, "", 4, "F", 1, 1},
		{-1, "", 1, "C", 5, 5},
		{-1, "", 2, "D", 5, 6},
		{-1, "", 3, "B", 2, 4},
		{-2, "", 1, "C", 10, 10},
		{-6, "", 1, "F", 1, 1},
		{-7, "", 1, "E", 100, 100}, // outside 7d
		{1, "", 1, "Z", 50, 50},    // tomorrow: never read
		{0, "shanghai", 1, "A", 1, 2},
		{-1, "shanghai", 1, "G", 3, 3},
		{-3, "shanghai", 1, "H", 9, 9},
	} {
		exec(t, db, `INSERT INTO trending_daily (day, city, rank_no, item_id, users, shares, run_id) VALUES (?, ?, ?, ?, ?, ?, 7)`,
			day(now, r.day), r.city, r.rank, r.item, r.users, r.shares)
	}

	// item_counts_minute around now (minute m).
	m := now.Truncate(time.Minute)
	for _, r := range []struct {
		at                       time.Time
		typ, item, channel, city string
		cnt                      int
	}{
		{m, "share", "r1", "wechat", "shanghai", 3},
		{m.Add(-10 * time.Minute), "share", "r2", "qq", "beijing", 4},
		{m.Add(-10 * time.Minute), "share", "r1", "app", "beijing", 1},
		{m.Add(-30 * time.Minute), "share", "r4", "wechat", "shanghai", 2},
		{m.Add(-59 * time.Minute), "share", "r3", "wechat", "shanghai", 2},   // first minute of the window
		{m.Add(-60 * time.Minute), "share", "r3", "wechat", "shanghai", 100}, // just before it
		{m.Add(-2 * time.Hour), "share", "r9", "wechat", "", 50},
		{m.Add(time.Minute), "share", "r9", "wechat", "", 50}, // future minute
		{m.Add(-5 * time.Minute), "view", "r5", "app", "shanghai", 100},
	} {
		exec(t, db, `INSERT INTO item_counts_minute (event_date, minute_start, type, item_id, channel, city, cnt, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.at.Format("2006-01-02"), r.at, r.typ, r.item, r.channel, r.city, r.cnt, now)
	}
}

type fixture struct {
	db    *sqlx.DB
	clock *clock
	h     http.Handler
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, _ := mysqltest.New(t)
	now := time.Now().UTC().Truncate(time.Second)
	seed(t, db, now)
	c := &clock{t: now}
	return &fixture{db: db, clock: c, now: now, h: New(db, Options{Now: c.Now})}
}

func get(t *testing.T, h http.Handler, target string) (int, string, http.Header) {
	t.Helper()
	return do(t, h, http.MethodGet, target)
}

func do(t *testing.T, h http.Handler, method, target string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Code, strings.TrimSuffix(rec.Body.String(), "\n"), rec.Header()
}

func wantJSON(t *testing.T, h http.Handler, target string, want string) {
	t.Helper()
	code, body, hdr := get(t, h, target)
	if code != 200 || body != want {
		t.Errorf("GET %s = %d\n%s\nwant 200\n%s", target, code, body, want)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s Content-Type = %q", target, ct)
	}
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func TestQueries(t *testing.T) {
	f := newFixture(t)
	now, h := f.now, f.h
	m := now.Truncate(time.Minute)
	from1h, to := rfc(m.Add(-59*time.Minute)), rfc(now)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)

	t.Run("trending live", func(t *testing.T) {
		wantJSON(t, h, "/v1/trending",
			`{"window":"1h","city":"","source":"live","from":"`+from1h+`","to":"`+to+`","items":[`+
				`{"rank":1,"item_id":"r1","shares":4},{"rank":2,"item_id":"r2","shares":4},`+
				`{"rank":3,"item_id":"r3","shares":2},{"rank":4,"item_id":"r4","shares":2}]}`)
		wantJSON(t, h, "/v1/trending?window=1h&city=shanghai&limit=2",
			`{"window":"1h","city":"shanghai","source":"live","from":"`+from1h+`","to":"`+to+`","items":[`+
				`{"rank":1,"item_id":"r1","shares":3},{"rank":2,"item_id":"r3","shares":2}]}`)
		wantJSON(t, h, "/v1/trending?city=beijing",
			`{"window":"1h","city":"beijing","source":"live","from":"`+from1h+`","to":"`+to+`","items":[`+
				`{"rank":1,"item_id":"r2","shares":4},{"rank":2,"item_id":"r1","shares":1}]}`)
		wantJSON(t, h, "/v1/trending?city=nowhere",
			`{"window":"1h","city":"nowhere","source":"live","from":"`+from1h+`","to":"`+to+`","items":[]}`)
		// An empty city is all cities.
		wantJSON(t, h, "/v1/trending?city=&limit=1",
			`{"window":"1h","city":"","source":"live","from":"`+from1h+`","to":"`+to+`","items":[{"rank":1,"item_id":"r1","shares":4}]}`)
	})

	t.Run("trending daily", func(t *testing.T) {
		from24, from7 := rfc(midnight.AddDate(0, 0, -1)), rfc(midnight.AddDate(0, 0, -6))
		// 24h: A 5/9, B 5/7, D 5/6, C 5/5, E 1/1, F 1/1.
		wantJSON(t, h, "/v1/trending?window=24h",
			`{"window":"24h","city":"","source":"trending_daily","from":"`+from24+`","to":"`+to+`","items":[`+
				`{"rank":1,"item_id":"A","shares":9,"users":5},{"rank":2,"item_id":"B","shares":7,"users":5},`+
				`{"rank":3,"item_id":"D","shares":6,"users":5},{"rank":4,"item_id":"C","shares":5,"users":5},`+
				`{"rank":5,"item_id":"E","shares":1,"users":1},{"rank":6,"item_id":"F","shares":1,"users":1}]}`)
		// 7d: C 15/15, A 5/9, B 5/7, D 5/6, F 2/2, E 1/1 (E's 100 is 7 days back).
		wantJSON(t, h, "/v1/trending?window=7d&limit=100",
			`{"window":"7d","city":"","source":"trending_daily","from":"`+from7+`","to":"`+to+`","items":[`+
				`{"rank":1,"item_id":"C","shares":15,"users":15},{"rank":2,"item_id":"A","shares":9,"users":5},`+
				`{"rank":3,"item_id":"B","shares":7,"users":5},{"rank":4,"item_id":"D","shares":6,"users":5},`+
				`{"rank":5,"item_id":"F","shares":2,"users":2},{"rank":6,"item_id":"E","shares":1,"users":1}]}`)
		wantJSON(t, h, "/v1/trending?window=24h&city=shanghai",
			`{"window":"24h","city":"shanghai","source":"trending_daily","from":"`+from24+`","to":"`+to+`","items":[`+
				`{"rank":1,"item_id":"G","shares":3,"users":3},{"rank":2,"item_id":"A","shares":2,"users":1}]}`)
		wantJSON(t, h, "/v1/trending?window=7d&city=shanghai&limit=1",
			`{"window":"7d","city":"shanghai","source":"trending_daily","from":"`+from7+`","to":"`+to+`","items":[`+
				`{"rank":1,"item_id":"H","shares":9,"users":9}]}`)
	})

	t.Run("recommendations", func(t *testing.T) {
		wantJSON(t, h, "/v1/users/u1/recommendations",
			`{"user_id":"u1","run_id":4,"items":[`+
				`{"rank":1,"item_id":"r2","score":3.5,"reason":"co_share","via":"r1"},`+
				`{"rank":2,"item_id":"r3","score":1.25,"reason":"co_share","via":"r1"},`+
				`{"rank":3,"item_id":"r7","score":0.5,"reason":"trending","via":"shanghai"}]}`)
		wantJSON(t, h, "/v1/users/u1/recommendations?limit=1",
			`{"user_id":"u1","run_id":4,"items":[{"rank":1,"item_id":"r2","score":3.5,"reason":"co_share","via":"r1"}]}`)
		wantJSON(t, h, "/v1/users/u2/recommendations?limit=100",
			`{"user_id":"u2","run_id":4,"items":[{"rank":1,"item_id":"r1","score":2,"reason":"co_share","via":"r2"}]}`)
		wantJSON(t, h, "/v1/users/nobody/recommendations", `{"user_id":"nobody","run_id":4,"items":[]}`)
	})

	t.Run("also shared", func(t *testing.T) {
		wantJSON(t, h, "/v1/items/r1/also-shared",
			`{"item_id":"r1","run_id":3,"items":[`+
				`{"rank":1,"item_id":"r2","support":12,"confidence":0.5,"lift":2.25},`+
				`{"rank":2,"item_id":"r3","support":7,"confidence":0.25,"lift":1.5},`+
				`{"rank":3,"item_id":"r4","support":3,"confidence":0.125,"lift":1}]}`)
		wantJSON(t, h, "/v1/items/r1/also-shared?limit=2",
			`{"item_id":"r1","run_id":3,"items":[`+
				`{"rank":1,"item_id":"r2","support":12,"confidence":0.5,"lift":2.25},`+
				`{"rank":2,"item_id":"r3","support":7,"confidence":0.25,"lift":1.5}]}`)
		// Ids are URL-decoded, "/" included when escaped; JSON is not HTML-escaped.
		wantJSON(t, h, "/v1/items/r%201%2Fx/also-shared",
			`{"item_id":"r 1/x","run_id":3,"items":[{"rank":1,"item_id":"r<&>","support":2,"confidence":1,"lift":4}]}`)
		wantJSON(t, h, "/v1/items/unknown/also-shared", `{"item_id":"unknown","run_id":3,"items":[]}`)
		// 64 characters is the longest id.
		long := strings.Repeat("é", 64)
		wantJSON(t, h, "/v1/items/"+long+"/also-shared", `{"item_id":"`+long+`","run_id":3,"items":[]}`)
	})

	t.Run("bad requests name the parameter", func(t *testing.T) {
		for _, c := range []struct{ target, want string }{
			{"/v1/trending?limit=abc", `limit: must be an integer from 1 to 100, got "abc"`},
			{"/v1/trending?limit=0", `limit: must be an integer from 1 to 100, got "0"`},
			{"/v1/trending?limit=101", `limit: must be an integer from 1 to 100, got "101"`},
			{"/v1/trending?limit=1&limit=2", `limit: given more than once`},
			{"/v1/trending?window=2h", `window: must be one of 1h, 24h, 7d, got "2h"`},
			{"/v1/trending?window=24H", `window: must be one of 1h, 24h, 7d, got "24H"`},
			{"/v1/trending?cty=shanghai", `cty: unknown parameter (allowed: city, window, limit)`},
			{"/v1/trending?city=" + strings.Repeat("x", 65), `city: must be at most 64 characters, got 65`},
			{"/v1/trending?city=%ff", `city: must be valid UTF-8`},
			{"/v1/trending?city=%zz", `city: bad escape in value "%zz"`},
			{"/v1/trending?%zz=1", `query: bad escape in parameter name "%zz"`},
			{"/v1/users/u1/recommendations?limit=-1", `limit: must be an integer from 1 to 100, got "-1"`},
			{"/v1/users/u1/recommendations?window=1h", `window: unknown parameter (allowed: limit)`},
			{"/v1/users//recommendations", `id: must be 1 to 64 characters, got 0`},
			{"/v1/users/" + strings.Repeat("u", 65) + "/recommendations", `id: must be 1 to 64 characters, got 65`},
			{"/v1/items/a/b/also-shared", `id: must be one path segment (escape "/" in an id as %2F), got "a/b"`},
			{"/v1/items/%ff/also-shared", `id: must be valid UTF-8`},
			{"/v1/items/r1/also-shared?limit=", ``}, // empty means the default: not an error
		} {
			code, body, hdr := get(t, h, c.target)
			if c.want == "" {
				if code != 200 {
					t.Errorf("GET %s = %d %s, want 200", c.target, code, body)
				}
				continue
			}
			want := `{"error":` + jsonString(c.want) + `}`
			if code != 400 || body != want {
				t.Errorf("GET %s = %d %s\nwant 400 %s", c.target, code, body, want)
			}
			if cc := hdr.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("GET %s Cache-Control = %q, want no-store", c.target, cc)
			}
		}
	})

	t.Run("methods and paths", func(t *testing.T) {
		code, body, hdr := do(t, h, http.MethodPost, "/v1/trending")
		if code != 405 || hdr.Get("Allow") != "GET, HEAD" || !strings.Contains(body, `"error"`) {
			t.Errorf("POST /v1/trending = %d %s (Allow %q), want 405 with Allow: GET, HEAD", code, body, hdr.Get("Allow"))
		}
		if code, _, _ := do(t, h, http.MethodDelete, "/v1/users/u1/recommendations"); code != 405 {
			t.Errorf("DELETE recommendations = %d, want 405", code)
		}
		if code, _, _ := do(t, h, http.MethodHead, "/v1/trending"); code != 200 {
			t.Errorf("HEAD /v1/trending = %d, want 200", code)
		}
		for _, p := range []string{"/", "/v1/trendingx", "/v1/users/u1", "/v1/users/recommendations", "/v1/items/r1/also"} {
			if code, body, _ := get(t, h, p); code != 404 || !strings.HasPrefix(body, `{"error":"not found`) {
				t.Errorf("GET %s = %d %s, want a JSON 404", p, code, body)
			}
		}
		if code, body, _ := get(t, h, "/healthz"); code != 200 || body != `{"status":"ok"}` {
			t.Errorf("GET /healthz = %d %s", code, body)
		}
		if code, body, _ := get(t, h, "/readyz"); code != 200 || body != `{"status":"ready"}` {
			t.Errorf("GET /readyz = %d %s", code, body)
		}
	})
}

func jsonString(s string) string {
	b, err := jsonMarshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestNoPublishedRun: before any mining run succeeds, lists are empty and
// run_id is null; a failed run does not count.
func TestNoPublishedRun(t *testing.T) {
	db, _ := mysqltest.New(t)
	exec(t, db, `INSERT INTO mining_runs (job, window_from, window_to, params, status, workflow_id, workflow_run_id, started_at)
		VALUES ('co_share', '2026-01-01', '2026-01-02', '{}', 'failed', 'wf', 'r', NOW())`)
	h := New(db, Options{})
	wantJSON(t, h, "/v1/users/u1/recommendations", `{"user_id":"u1","run_id":null,"items":[]}`)
	wantJSON(t, h, "/v1/items/r1/also-shared", `{"item_id":"r1","run_id":null,"items":[]}`)
	code, body, _ := get(t, h, "/v1/trending?window=7d")
	if code != 200 || !strings.HasSuffix(body, `"items":[]}`) {
		t.Errorf("GET /v1/trending?window=7d = %d %s, want an empty list", code, body)
	}
}

// waitIdle waits for background refreshes to finish.
func waitIdle(t *testing.T, h http.Handler) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !h.(*handler).cache.idle() {
		if time.Now().After(deadline) {
			t.Fatal("a background refresh did not finish")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCacheTTL: answers are reused for their TTL (1 s live, 5 s otherwise,
// on the injected clock), never beyond it, and say so in Cache-Control; a
// hit past half the TTL refreshes the answer in the background.
func TestCacheTTL(t *testing.T) {
	f := newFixture(t)
	h, db := f.h, f.db
	m := f.now.Truncate(time.Minute)

	call := func(target string) (string, string) {
		t.Helper()
		code, body, hdr := get(t, h, target)
		if code != 200 {
			t.Fatalf("GET %s = %d %s", target, code, body)
		}
		return body, hdr.Get("Cache-Control")
	}
	const live = "/v1/trending?limit=1"
	b1, cc := call(live)
	if !strings.Contains(b1, `"item_id":"r1","shares":4`) || cc != "max-age=1" {
		t.Fatalf("first live answer %s (Cache-Control %q)", b1, cc)
	}
	exec(t, db, `INSERT INTO item_counts_minute (event_date, minute_start, type, item_id, channel, city, cnt, updated_at)
		VALUES (?, ?, 'share', 'r8', 'qq', 'beijing', 40, NOW())`, m.Format("2006-01-02"), m)
	f.clock.Add(400 * time.Millisecond)
	if b, cc := call(live); b != b1 || cc != "max-age=1" {
		t.Fatalf("within the 1 s TTL: %s (Cache-Control %q), want the cached %s", b, cc, b1)
	}
	if !h.(*handler).cache.idle() {
		t.Fatal("a refresh started in the first half of the TTL")
	}
	// Past half the TTL: still the cached answer, and a background refresh.
	f.clock.Add(599 * time.Millisecond)
	if b, _ := call(live); b != b1 {
		t.Fatalf("within the 1 s TTL the answer changed:\n%s\n%s", b1, b)
	}
	waitIdle(t, h)
	if b, cc := call(live); !strings.Contains(b, `"item_id":"r8","shares":40`) || cc != "max-age=1" {
		t.Fatalf("after the background refresh: %s (Cache-Control %q), want r8 first", b, cc)
	}
	// The refreshed answer serves another city too (one snapshot for all).
	if b, _ := call("/v1/trending?city=beijing"); !strings.Contains(b, `"items":[{"rank":1,"item_id":"r8","shares":40},{"rank":2,"item_id":"r2","shares":4}`) {
		t.Fatalf("beijing after the refresh: %s", b)
	}

	const recs = "/v1/users/u2/recommendations"
	r1, cc := call(recs)
	if cc != "max-age=5" {
		t.Fatalf("Cache-Control = %q, want max-age=5", cc)
	}
	exec(t, db, `INSERT INTO recommendations (run_id, user_id, rank_no, item_id, score, reason, via) VALUES (4, 'u2', 2, 'r9', 1, 'trending', '')`)
	f.clock.Add(2 * time.Second)
	if r, cc := call(recs); r != r1 || cc != "max-age=3" {
		t.Fatalf("after 2 s: %s (Cache-Control %q), want the cached %s with max-age=3", r, cc, r1)
	}
	// Another limit of the same key is served from the same cached answer.
	if r, _ := call(recs + "?limit=5"); strings.Contains(r, "r9") {
		t.Fatalf("limit=5 within the TTL = %s, want the cached answer", r)
	}
	// Expired (no request in the second half): the next request reads MySQL.
	f.clock.Add(3 * time.Second)
	if r, cc := call(recs); !strings.Contains(r, `"item_id":"r9"`) || cc != "max-age=5" {
		t.Fatalf("after the 5 s TTL: %s (Cache-Control %q), want r9 with max-age=5", r, cc)
	}
}

// TestCacheDisabled: a negative TTL reads MySQL every time.
func TestCacheDisabled(t *testing.T) {
	db, _ := mysqltest.New(t)
	h := New(db, Options{TTL: -1, LiveTTL: -1})
	wantJSON(t, h, "/v1/items/r1/also-shared", `{"item_id":"r1","run_id":null,"items":[]}`)
	exec(t, db, `INSERT INTO mining_runs (run_id, job, window_from, window_to, params, status, workflow_id, workflow_run_id, started_at)
		VALUES (9, 'co_share', '2026-01-01', '2026-01-02', '{}', 'succeeded', 'wf', 'r', NOW())`)
	_, _, hdr := get(t, h, "/v1/items/r1/also-shared")
	wantJSON(t, h, "/v1/items/r1/also-shared", `{"item_id":"r1","run_id":9,"items":[]}`)
	if cc := hdr.Get("Cache-Control"); cc != "max-age=0" {
		t.Errorf("Cache-Control = %q, want max-age=0", cc)
	}
}

// TestMySQLDown: an unreachable or closed database gives a JSON 503.
func TestMySQLDown(t *testing.T) {
	closed, err := sqlx.Open("mysql", mysqltest.DSN(t, "sluice"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	unreachable, err := sqlx.Open("mysql", "root@tcp(127.0.0.1:1)/sluice?timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	defer unreachable.Close()
	for name, db := range map[string]*sqlx.DB{"closed": closed, "unreachable": unreachable} {
		h := New(db, Options{})
		for _, target := range []string{"/v1/trending", "/v1/trending?window=7d", "/v1/users/u1/recommendations", "/v1/items/r1/also-shared", "/readyz"} {
			code, body, hdr := get(t, h, target)
			if code != 503 || body != `{"error":"MySQL is unavailable"}` || hdr.Get("Retry-After") == "" {
				t.Errorf("%s DB: GET %s = %d %s (Retry-After %q), want a JSON 503", name, target, code, body, hdr.Get("Retry-After"))
			}
		}
		// Failures are not cached: the same handler answers again from MySQL.
		if n := h.(*handler).cache.len(); n != 0 {
			t.Errorf("%s DB: %d failed answers cached", name, n)
		}
	}
}
