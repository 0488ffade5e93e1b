package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testAnswer(t *testing.T, ids ...string) *answer {
	t.Helper()
	items := make([]alsoItem, len(ids))
	for i, id := range ids {
		items[i] = alsoItem{Rank: i + 1, ItemID: id}
	}
	a, err := newAnswer(alsoHead{ItemID: "x", Empty: []int{}}, items)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestOneLoadPerKey: concurrent requests for one key run one query and all
// get its answer; another key loads independently.
func TestOneLoadPerKey(t *testing.T) {
	c := newCache(100, time.Now)
	var loads atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	load := func() (any, error) {
		if loads.Add(1) == 1 {
			started <- struct{}{}
		}
		<-release
		return testAnswer(t, "a"), nil
	}
	const n = 50
	var wg sync.WaitGroup
	outcomes := make(chan string, n)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _, o, _ := c.get(context.Background(), "k", time.Minute, load)
		outcomes <- o
	}()
	<-started
	for range n - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, o, err := c.get(context.Background(), "k", time.Minute, load)
			ans, _ := v.(*answer)
			if err != nil || ans == nil || string(ans.render(10)) != `{"item_id":"x","run_id":null,"items":[{"rank":1,"item_id":"a","support":0,"confidence":0,"lift":0}]}` {
				t.Errorf("waiter got %v %v", ans, err)
			}
			outcomes <- o
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the waiters queue up
	close(release)
	wg.Wait()
	close(outcomes)
	if got := loads.Load(); got != 1 {
		t.Fatalf("%d loads for one key, want 1", got)
	}
	counts := map[string]int{}
	for o := range outcomes {
		counts[o]++
	}
	if counts[outcomeMiss] != 1 || counts[outcomeMiss]+counts[outcomeShared]+counts[outcomeHit] != n {
		t.Fatalf("outcomes %v", counts)
	}
	if _, _, o, _ := c.get(context.Background(), "k", time.Minute, load); o != outcomeHit {
		t.Fatalf("after the load: %s, want a hit", o)
	}
}

// TestWaiterGivesUp: a waiter whose request ends stops waiting; the load
// goes on for the others.
func TestWaiterGivesUp(t *testing.T) {
	c := newCache(100, time.Now)
	release := make(chan struct{})
	started := make(chan struct{})
	go func() {
		_, _, _, _ = c.get(context.Background(), "k", time.Minute, func() (any, error) {
			close(started)
			<-release
			return testAnswer(t), nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, _, err := c.get(ctx, "k", time.Minute, func() (any, error) { t.Error("second load"); return nil, nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter error = %v, want its context's", err)
	}
	close(release)
}

// TestErrorsAndPanicsNotCached: a failed or panicking load is not kept and
// releases its waiters.
func TestErrorsAndPanicsNotCached(t *testing.T) {
	c := newCache(100, time.Now)
	boom := errors.New("boom")
	if _, _, _, err := c.get(context.Background(), "k", time.Minute, func() (any, error) { return nil, boom }); err != boom {
		t.Fatalf("err = %v", err)
	}
	func() {
		defer func() { _ = recover() }()
		_, _, _, _ = c.get(context.Background(), "k", time.Minute, func() (any, error) { panic("load") })
	}()
	if c.len() != 0 || len(c.calls) != 0 {
		t.Fatalf("after failures: %d entries, %d calls", c.len(), len(c.calls))
	}
	_, _, o, err := c.get(context.Background(), "k", time.Minute, func() (any, error) { return testAnswer(t), nil })
	if err != nil || o != outcomeMiss {
		t.Fatalf("after failures: %s %v", o, err)
	}
}

// TestCacheBounded: the cache never holds more than its maximum of keys.
func TestCacheBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	c := newCache(100, clk.Now)
	a := testAnswer(t, "a")
	for i := range 1000 {
		_, _, _, _ = c.get(context.Background(), fmt.Sprint("k", i), time.Minute, func() (any, error) { return a, nil })
		if n := c.len(); n > 100 {
			t.Fatalf("after %d keys the cache holds %d, want at most 100", i+1, n)
		}
	}
	// Expired entries go first: after the TTL one insert sweeps them all.
	clk.Add(time.Minute)
	for i := range 100 - c.len() + 1 {
		_, _, _, _ = c.get(context.Background(), fmt.Sprint("new", i), time.Hour, func() (any, error) { return a, nil })
	}
	if n := c.len(); n > 100 {
		t.Fatalf("cache holds %d after the sweep", n)
	}
	for k, e := range c.entries {
		if !clk.Now().Before(e.expires) {
			t.Fatalf("expired entry %q survived the sweep", k)
		}
	}
}

// TestRenderDoesNotShare: what one request gets is its own buffer.
func TestRenderDoesNotShare(t *testing.T) {
	a := testAnswer(t, "a", "b", "c")
	want := string(a.render(3))
	b1 := a.render(2)
	_ = append(b1, "garbage"...)
	for i := range b1 {
		b1[i] = 'X'
	}
	if got := string(a.render(3)); got != want {
		t.Fatalf("render after mutating a rendered answer:\n%s\nwant\n%s", got, want)
	}
	if got := string(a.render(1)); got != `{"item_id":"x","run_id":null,"items":[{"rank":1,"item_id":"a","support":0,"confidence":0,"lift":0}]}` {
		t.Fatalf("render(1) = %s", got)
	}
}

// TestRefreshAhead: a hit past half the TTL starts one background load;
// requests keep the cached value until it expires, then wait for the load.
func TestRefreshAhead(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	c := newCache(100, clk.Now)
	var loads atomic.Int32
	release := make(chan struct{}, 10)
	load := func() (any, error) {
		n := loads.Add(1)
		if n > 1 {
			<-release
		}
		return n, nil
	}
	get := func() (any, string) {
		v, _, o, err := c.get(context.Background(), "k", time.Second, load)
		if err != nil {
			t.Fatal(err)
		}
		return v, o
	}
	if v, o := get(); v != int32(1) || o != outcomeMiss {
		t.Fatalf("first get = %v %s", v, o)
	}
	clk.Add(499 * time.Millisecond)
	if v, o := get(); v != int32(1) || o != outcomeHit || !c.idle() {
		t.Fatalf("first half: %v %s idle=%v", v, o, c.idle())
	}
	clk.Add(time.Millisecond)
	if v, o := get(); v != int32(1) || o != outcomeHit {
		t.Fatalf("second half: %v %s", v, o)
	}
	if v, o := get(); v != int32(1) || o != outcomeHit {
		t.Fatalf("second half again: %v %s", v, o)
	}
	// The load is still running when the value expires: requests wait for it.
	clk.Add(500 * time.Millisecond)
	done := make(chan string)
	go func() {
		v, o := get()
		done <- fmt.Sprint(v, " ", o)
	}()
	time.Sleep(20 * time.Millisecond)
	release <- struct{}{}
	if got := <-done; got != "2 shared" {
		t.Fatalf("after expiry: %s, want the refreshed value 2, shared", got)
	}
	if n := loads.Load(); n != 2 {
		t.Fatalf("%d loads, want 2", n)
	}
	// The refreshed value started at +500ms: it expires at +1500ms.
	clk.Add(499 * time.Millisecond)
	if v, o := get(); v != int32(2) || o != outcomeHit {
		t.Fatalf("refreshed value: %v %s", v, o)
	}
	release <- struct{}{}
	for !c.idle() {
		time.Sleep(time.Millisecond)
	}
}
