package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/devstack"
)

func getJSON(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	return resp.StatusCode, b.String()
}

type trendingAnswer struct {
	Window string `json:"window"`
	City   string `json:"city"`
	Source string `json:"source"`
	Items  []struct {
		Rank   int    `json:"rank"`
		ItemID string `json:"item_id"`
		Shares int64  `json:"shares"`
	} `json:"items"`
}

func (a trendingAnswer) ranking() string {
	var parts []string
	for _, it := range a.Items {
		parts = append(parts, fmt.Sprintf("%d:%s=%d", it.Rank, it.ItemID, it.Shares))
	}
	return strings.Join(parts, " ")
}

// TestQueryAPITrendingLive posts share events through the collector, waits
// for them to land, and reads them back ranked from the dev stack's query
// API; bad parameters get a 400 naming them.
func TestQueryAPITrendingLive(t *testing.T) {
	cfg, db, _ := newStackConfig(t, false)
	s := startStack(t, cfg)
	defer stopStack(t, s)
	if s.API == "" {
		t.Fatal("the dev stack did not start the query API")
	}
	var summary bytes.Buffer
	s.PrintSummary(&summary)
	if !strings.Contains(summary.String(), "Query API         GET  "+s.API+"/v1/trending") {
		t.Errorf("the summary does not show the query API at %s:\n%s", s.API, summary.String())
	}

	// api-r1: 3 shares, api-r2: 2, api-r3: 1; one view that must not count,
	// and one duplicate that must count once.
	at := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	var events []string
	add := func(id, typ, user, item, city string) {
		events = append(events, fmt.Sprintf(`{"event_id":%q,"type":%q,"occurred_at":%q,"user_id":%q,"item_id":%q,"channel":"wechat","city":%q}`,
			id, typ, at, user, item, city))
	}
	add("api-1", "share", "u1", "api-r1", "shanghai")
	add("api-2", "share", "u2", "api-r1", "shanghai")
	add("api-3", "share", "u3", "api-r1", "beijing")
	add("api-4", "share", "u1", "api-r2", "beijing")
	add("api-5", "share", "u2", "api-r2", "beijing")
	add("api-6", "share", "u3", "api-r3", "shanghai")
	add("api-7", "view", "u4", "api-r3", "shanghai")
	add("api-7", "view", "u4", "api-r3", "shanghai")
	add("api-1", "share", "u1", "api-r1", "shanghai")
	code, resp := postJSON(t, s.Collector+"/v1/events", "["+strings.Join(events, ",")+"]")
	if code != 200 || !strings.Contains(resp, fmt.Sprintf(`"accepted":%d`, len(events))) {
		t.Fatalf("POST answered %d %s", code, resp)
	}
	waitCaughtUp(t, s, db, cfg.Topic, 30*time.Second)
	if n := queryInt(t, db, "SELECT COALESCE(SUM(cnt),0) FROM item_counts_minute WHERE type = 'share'"); n != 6 {
		t.Fatalf("share counts in MySQL = %d, want 6", n)
	}

	read := func(query string) trendingAnswer {
		t.Helper()
		code, body := getJSON(t, s.API+"/v1/trending"+query)
		if code != 200 {
			t.Fatalf("GET /v1/trending%s = %d %s", query, code, body)
		}
		var a trendingAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("GET /v1/trending%s: %v in %s", query, err, body)
		}
		return a
	}
	a := read("?window=1h")
	if a.Window != "1h" || a.Source != "live" || a.ranking() != "1:api-r1=3 2:api-r2=2 3:api-r3=1" {
		t.Fatalf("trending 1h = %+v, want api-r1=3, api-r2=2, api-r3=1 from the live source", a)
	}
	if got := read("?window=1h&city=shanghai&limit=5").ranking(); got != "1:api-r1=2 2:api-r3=1" {
		t.Errorf("trending 1h in shanghai = %s", got)
	}
	if got := read("?limit=1").ranking(); got != "1:api-r1=3" {
		t.Errorf("trending limit=1 = %s", got)
	}
	// Nothing is mined yet: the daily windows and the mining answers are empty, not errors.
	if a := read("?window=7d"); a.Source != "trending_daily" || len(a.Items) != 0 {
		t.Errorf("trending 7d before any mining run = %+v, want empty", a)
	}
	for _, p := range []string{"/v1/users/u1/recommendations", "/v1/items/api-r1/also-shared"} {
		if code, body := getJSON(t, s.API+p); code != 200 || !strings.HasSuffix(strings.TrimSpace(body), `"run_id":null,"items":[]}`) {
			t.Errorf("GET %s = %d %s, want an empty list", p, code, body)
		}
	}

	// Bad parameters: 400 naming them.
	for query, param := range map[string]string{"?window=2h": "window", "?limit=0": "limit", "?citty=x": "citty"} {
		code, body := getJSON(t, s.API+"/v1/trending"+query)
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); code != 400 || err != nil || !strings.HasPrefix(e.Error, param+": ") {
			t.Errorf("GET /v1/trending%s = %d %s, want a 400 naming %s", query, code, body, param)
		}
	}
}

// TestQueryAPIBusyPortNamesTheFlag occupies the query API's port.
func TestQueryAPIBusyPortNamesTheFlag(t *testing.T) {
	cfg, _, _ := newStackConfig(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg.APIAddr = ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := devstack.Start(ctx, cfg)
	if err == nil {
		stopStack(t, s)
	}
	var busy *devstack.PortInUseError
	if !errors.As(err, &busy) || !strings.HasPrefix(busy.Flag, "--api-addr") || !strings.Contains(err.Error(), cfg.APIAddr) {
		t.Fatalf("error = %v, want a PortInUseError naming %s and --api-addr", err, cfg.APIAddr)
	}
}
