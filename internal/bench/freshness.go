package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/loadgen"
)

// freshnessResult is what the freshness phase measured.
type freshnessResult struct {
	TargetRate   float64
	PostedRate   float64
	Posted       int // probes acknowledged by the collector
	FailedPosts  int
	Found        int // of them, rows found in item_counts_minute
	P50, P99     time.Duration
	Max          time.Duration
	P50FromSend  time.Duration
	P99FromSend  time.Duration
	Negative     int // rows whose updated_at precedes the acknowledgement
	PostDuration time.Duration
	// Worst are the seconds of posting (counted from the first POST)
	// whose probes waited longest, slowest first: whether a high p99
	// comes from one stall or from queueing all along.
	Worst []freshSecond
}

// freshSecond is one second of (d)'s posting.
type freshSecond struct {
	At     int           // seconds after the first POST was sent
	Max    time.Duration // longest probe wait from acknowledgement to landing
	Probes int
	Slow   int // probes that waited longer than the whole run's p99
}

// worstSeconds groups the probes by the second their POST was sent and
// returns the n seconds with the longest waits.
func worstSeconds(sent []time.Time, waits []time.Duration, p99 time.Duration, n int) []freshSecond {
	if len(sent) == 0 {
		return nil
	}
	first := sent[0]
	for _, t := range sent {
		if t.Before(first) {
			first = t
		}
	}
	bySec := map[int]*freshSecond{}
	for i, t := range sent {
		sec := int(t.Sub(first) / time.Second)
		fs := bySec[sec]
		if fs == nil {
			fs = &freshSecond{At: sec}
			bySec[sec] = fs
		}
		fs.Probes++
		fs.Max = max(fs.Max, waits[i])
		if waits[i] > p99 {
			fs.Slow++
		}
	}
	out := make([]freshSecond, 0, len(bySec))
	for _, fs := range bySec {
		out = append(out, *fs)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Max > out[j].Max || out[i].Max == out[j].Max && out[i].At < out[j].At
	})
	return out[:min(n, len(out))]
}

const freshItemPrefix = "fresh-item-"

// probeEvery: one event in this many is a probe, a share of an item_id of
// its own, so that its item_counts_minute row's updated_at tells when that
// event's batch committed. The rest are loadgen events like (b)'s (Zipf
// items, mixed types, channels and cities), so the load is the same kind of
// event as the rate it is half of, not one new aggregate row per event.
const probeEvery = 16

// freshLoad makes the events (d) posts: loadgen events like (b)'s, with a
// nil (a probe's place) every probeEvery. They are generated before the
// phase, so that the JSON encoding is not part of the load the machine
// carries while it is measured (it cost 2 s of CPU of 20).
func freshLoad(rate float64, dur time.Duration) ([][]byte, error) {
	total := int(rate * dur.Seconds())
	cfg := loadgen.DefaultConfig()
	cfg.Seed, cfg.Count, cfg.DuplicateRatio, cfg.BadRatio, cfg.RunID = 7, total, 0, 0, "fresh-load"
	gen, err := loadgen.NewGenerator(cfg)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	load := make([][]byte, total)
	for i := range load {
		if i%probeEvery != 0 {
			load[i] = gen.Next(now).Payload
		}
	}
	return load, nil
}

// postFresh posts load to the collector at rate events/s, in small
// batches every tick, with a probe in each nil place, and records for each
// probe (indexed by its number) when its POST was sent and acknowledged.
// posted counts every acknowledged event.
func postFresh(ctx context.Context, url string, rate float64, load [][]byte) (sent, acked []time.Time, posted, failed int, err error) {
	const tick = 20 * time.Millisecond
	total := len(load)
	probes := (total + probeEvery - 1) / probeEvery
	sent = make([]time.Time, probes)
	acked = make([]time.Time, probes)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, 32)
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	next := 0
	for next < total {
		select {
		case <-ctx.Done():
			wg.Wait()
			return sent, acked, posted, failed, ctx.Err()
		case <-t.C:
		}
		due := min(total, int(rate*time.Since(start).Seconds()))
		if due <= next {
			continue
		}
		lo, hi := next, due
		next = due
		now := time.Now()
		at := now.UTC().Format("2006-01-02T15:04:05.000Z")
		body := bytes.NewBuffer(make([]byte, 0, (hi-lo)*200))
		body.WriteByte('[')
		for i := lo; i < hi; i++ {
			if i > lo {
				body.WriteByte(',')
			}
			if i%probeEvery == 0 {
				fmt.Fprintf(body, `{"event_id":"fresh-%d","type":"share","occurred_at":%q,"user_id":"u-fresh","item_id":"%s%d","channel":"wechat","city":"shanghai"}`,
					i/probeEvery, at, freshItemPrefix, i/probeEvery)
				continue
			}
			body.Write(load[i])
		}
		body.WriteByte(']')
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sentAt := time.Now()
			resp, err := client.Post(url, "application/json", body)
			done := time.Now()
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				reply, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if ok && !strings.Contains(string(reply), `"accepted":`+strconv.Itoa(hi-lo)) {
					ok = false
					err = fmt.Errorf("collector answered %s", reply)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				failed += hi - lo
				if firstErr == nil {
					if err == nil {
						err = fmt.Errorf("collector answered %s", resp.Status)
					}
					firstErr = err
				}
				return
			}
			posted += hi - lo
			for i := (lo + probeEvery - 1) / probeEvery * probeEvery; i < hi; i += probeEvery {
				sent[i/probeEvery], acked[i/probeEvery] = sentAt, done
			}
		}()
	}
	wg.Wait()
	if failed == total {
		return sent, acked, posted, failed, fmt.Errorf("every POST failed: %w", firstErr)
	}
	return sent, acked, posted, failed, nil
}

// freshLatencies reads updated_at of every probe's minute count and
// compares it with the time its POST was sent and acknowledged.
func freshLatencies(ctx context.Context, db *sqlx.DB, sent, acked []time.Time) (freshnessResult, error) {
	var res freshnessResult
	rows, err := db.QueryContext(ctx, "SELECT item_id, updated_at FROM item_counts_minute WHERE type = 'share' AND item_id LIKE ?", freshItemPrefix+"%")
	if err != nil {
		return res, fmt.Errorf("reading fresh minute counts: %w", err)
	}
	defer rows.Close()
	var fromAck, fromSend []time.Duration
	var sentAt []time.Time
	for rows.Next() {
		var item string
		var at time.Time
		if err := rows.Scan(&item, &at); err != nil {
			return res, err
		}
		i, err := strconv.Atoi(strings.TrimPrefix(item, freshItemPrefix))
		if err != nil || i < 0 || i >= len(acked) || acked[i].IsZero() {
			continue
		}
		d := at.Sub(acked[i])
		if d < 0 {
			res.Negative++
		}
		fromAck = append(fromAck, d)
		fromSend = append(fromSend, at.Sub(sent[i]))
		sentAt = append(sentAt, sent[i])
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	for _, a := range acked {
		if !a.IsZero() {
			res.Posted++
		}
	}
	res.Found = len(fromAck)
	if len(fromAck) == 0 {
		return res, fmt.Errorf("none of the %d posted events has a minute count", res.Posted)
	}
	// percentile sorts its argument: fromAck keeps its order for worstSeconds.
	byWait := slices.Clone(fromAck)
	res.P50, res.P99, res.Max = percentile(byWait, 0.50), percentile(byWait, 0.99), percentile(byWait, 1)
	res.Worst = worstSeconds(sentAt, fromAck, res.P99, 3)
	res.P50FromSend, res.P99FromSend = percentile(fromSend, 0.50), percentile(fromSend, 0.99)
	return res, nil
}

// percentile is the nearest-rank percentile of ds (sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	k := int(p*float64(len(ds))+0.999999) - 1
	return ds[max(0, min(k, len(ds)-1))]
}
