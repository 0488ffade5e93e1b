package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// answer is one cached result: the JSON of everything before the items
// (ending in `"items":[`) and each item's JSON, in rank order. It is never
// modified once built; render copies what it needs into a new buffer, so
// no request shares a mutable slice with the cache or with another request.
type answer struct {
	head  []byte
	items [][]byte
}

// render returns the JSON of the answer with its first limit items.
func (a *answer) render(limit int) []byte {
	n := min(limit, len(a.items))
	size := len(a.head) + 3 // "]}" and the newline writeJSON appends
	for _, it := range a.items[:n] {
		size += len(it) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, a.head...)
	for i, it := range a.items[:n] {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']', '}')
}

// newAnswer encodes head (a struct whose JSON must end with an empty
// "items" list, which is dropped) and items.
func newAnswer[T any](head any, items []T) (*answer, error) {
	hb, err := jsonMarshal(head)
	if err != nil {
		return nil, err
	}
	const tail = `"items":[]}`
	if !bytes.HasSuffix(hb, []byte(tail)) {
		return nil, fmt.Errorf("encoding answer: head %s does not end with %s", hb, tail)
	}
	a := &answer{head: hb[:len(hb)-2], items: make([][]byte, len(items))}
	for i := range items {
		if a.items[i], err = jsonMarshal(items[i]); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// jsonMarshal is json.Marshal without HTML escaping (ids may hold & < >).
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// cache keeps loaded values (an *answer, or a *liveSnapshot) for their TTL
// and runs at most one load per key at a time: requests arriving while a key
// loads wait for that load and share its result. Failed loads are not
// cached.
//
// Refresh ahead: a hit on a value past half its TTL starts one background
// load of the key and is still answered from the cache. Hot keys are thus
// replaced before they expire and their requests never wait for MySQL, while
// no value is served after its TTL (counted from the start of its query).
type cache struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
	calls   map[string]*call
}

type cacheEntry struct {
	val       any
	refreshAt time.Time
	expires   time.Time
}

type call struct {
	done    chan struct{}
	val     any
	expires time.Time
	err     error
}

// Cache outcomes, reported in the sluice.api.cache.lookups metric.
const (
	outcomeHit    = "hit"    // answered from the cache
	outcomeShared = "shared" // waited for another request's query
	outcomeMiss   = "miss"   // ran the query
)

func newCache(max int, now func() time.Time) *cache {
	return &cache{max: max, now: now, entries: map[string]cacheEntry{}, calls: map[string]*call{}}
}

var errLoadPanicked = errors.New("query API: loading the answer panicked")

// get returns the cached value for key, or loads it. A loaded value is kept
// for ttl from the moment its load started (ttl <= 0: not kept).
func (c *cache) get(ctx context.Context, key string, ttl time.Duration, load func() (any, error)) (any, time.Time, string, error) {
	c.mu.Lock()
	now := c.now()
	if e, ok := c.entries[key]; ok {
		if now.Before(e.expires) {
			if !now.Before(e.refreshAt) && c.calls[key] == nil {
				cl := c.startLocked(key)
				go func() {
					defer func() { _ = recover() }() // the call reports errLoadPanicked
					c.run(cl, key, ttl, now, load)
				}()
			}
			c.mu.Unlock()
			return e.val, e.expires, outcomeHit, nil
		}
		delete(c.entries, key)
	}
	if cl, ok := c.calls[key]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			return cl.val, cl.expires, outcomeShared, cl.err
		case <-ctx.Done():
			return nil, time.Time{}, outcomeShared, ctx.Err()
		}
	}
	cl := c.startLocked(key)
	c.mu.Unlock()
	c.run(cl, key, ttl, now, load)
	return cl.val, cl.expires, outcomeMiss, cl.err
}

func (c *cache) startLocked(key string) *call {
	cl := &call{done: make(chan struct{}), err: errLoadPanicked}
	c.calls[key] = cl
	return cl
}

// run loads key for cl, started at now, then caches the value and releases
// the waiters.
func (c *cache) run(cl *call, key string, ttl time.Duration, now time.Time, load func() (any, error)) {
	defer func() {
		c.mu.Lock()
		delete(c.calls, key)
		if cl.err == nil && ttl > 0 {
			c.entries[key] = cacheEntry{val: cl.val, refreshAt: now.Add(ttl / 2), expires: cl.expires}
			c.evictLocked()
		}
		c.mu.Unlock()
		close(cl.done)
	}()
	val, err := load()
	cl.val, cl.err = val, err
	if ttl > 0 {
		cl.expires = now.Add(ttl)
	}
}

// evictLocked keeps the cache within max keys: expired entries go first,
// then arbitrary ones (map order) down to 90 % of max, so that a full cache
// is not swept on every insert.
func (c *cache) evictLocked() {
	if len(c.entries) <= c.max {
		return
	}
	now := c.now()
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	target := c.max - c.max/10
	for k := range c.entries {
		if len(c.entries) <= target {
			break
		}
		delete(c.entries, k)
	}
}

// len is the number of cached keys (tests).
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// idle reports whether no load is running (tests).
func (c *cache) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls) == 0
}
