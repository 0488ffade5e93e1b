package loadgen

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Stats counts what a run sent. Items of a batch count once the sink took
// the batch without error.
type Stats struct {
	Emitted     int            `json:"emitted"`       // Valid + Duplicates + Invalid
	Valid       int            `json:"valid"`         // distinct valid events (originals only)
	Duplicates  int            `json:"duplicates"`    // re-sends of earlier valid events
	Invalid     int            `json:"invalid"`       // bad items
	ValidByType map[string]int `json:"valid_by_type"` // distinct valid events per type
	Accepted    int            `json:"accepted"`      // as reported by the sink
	Rejected    int            `json:"rejected"`      // as reported by the sink
}

func (s *Stats) add(items []Item, accepted, rejected int) {
	for _, it := range items {
		switch {
		case it.Duplicate:
			s.Duplicates++
		case it.Valid:
			s.Valid++
			s.ValidByType[it.Type]++
		default:
			s.Invalid++
		}
	}
	s.Emitted += len(items)
	s.Accepted += accepted
	s.Rejected += rejected
}

// Sink delivers a batch of items. It must not keep items after returning.
type Sink interface {
	Send(ctx context.Context, items []Item) (accepted, rejected int, err error)
}

// maxLinger bounds how long a partial batch waits for more items when Rate
// paces the run.
const maxLinger = 100 * time.Millisecond

// Run generates items per cfg and sends them to sink in batches of
// BatchSize, paced to Rate, until Count items are out or ctx is done.
// Stopping because ctx is done is not an error; a partial batch not yet
// sent is then dropped. A sink error ends the run.
func Run(ctx context.Context, cfg Config, sink Sink) (Stats, error) {
	g, err := NewGenerator(cfg)
	if err != nil {
		return Stats{}, err
	}
	cfg = g.cfg
	stats := Stats{ValidByType: map[string]int{}}
	batch := make([]Item, 0, cfg.BatchSize)
	var batchStart time.Time
	flush := func() error {
		accepted, rejected, err := sink.Send(ctx, batch)
		if err != nil {
			return err
		}
		stats.add(batch, accepted, rejected)
		batch = batch[:0]
		return nil
	}
	pace := newPacer(cfg.Rate, cfg.BatchSize, time.Now())
	for generated := 0; cfg.Count == 0 || generated < cfg.Count; {
		if ctx.Err() != nil {
			return stats, nil
		}
		n := cfg.BatchSize - len(batch)
		if cfg.Count > 0 {
			n = min(n, cfg.Count-generated)
		}
		now := time.Now()
		if pace != nil {
			var wait time.Duration
			if n, wait = pace.take(now, n); n == 0 {
				if len(batch) > 0 && now.Sub(batchStart)+wait >= maxLinger {
					if err := flush(); err != nil {
						return stats, sendError(ctx, err)
					}
					continue
				}
				sleep(ctx, max(wait, time.Millisecond))
				continue
			}
		}
		if len(batch) == 0 {
			batchStart = now
		}
		for range n {
			batch = append(batch, g.Next(now))
		}
		generated += n
		if len(batch) == cfg.BatchSize {
			if err := flush(); err != nil {
				return stats, sendError(ctx, err)
			}
		}
	}
	if len(batch) > 0 && ctx.Err() == nil {
		if err := flush(); err != nil {
			return stats, sendError(ctx, err)
		}
	}
	return stats, nil
}

// sendError wraps a sink error, or drops it when ctx ending caused it.
func sendError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("sending batch: %w", err)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// pacer is a token bucket refilled at rate per second, holding at most
// burst tokens.
type pacer struct {
	rate, burst, tokens float64
	last                time.Time
}

// newPacer returns nil for rate 0 (no pacing). The bucket starts with one
// token so the first item goes out at once.
func newPacer(rate float64, burst int, now time.Time) *pacer {
	if rate == 0 {
		return nil
	}
	return &pacer{rate: rate, burst: float64(max(burst, 1)), tokens: 1, last: now}
}

// take removes up to want whole tokens and returns how many it got; with
// none available it returns how long until the next one.
func (p *pacer) take(now time.Time, want int) (int, time.Duration) {
	p.tokens = math.Min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
	p.last = now
	if p.tokens < 1 {
		wait := (1 - p.tokens) / p.rate
		return 0, time.Duration(math.Min(wait, time.Hour.Seconds()) * float64(time.Second))
	}
	n := min(want, int(p.tokens))
	p.tokens -= float64(n)
	return n, 0
}
