package activities

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// lanes hands the messages of a consumer session's partitions to its
// writers. Each partition is a lane: a queue of decoded messages plus the
// partition's committed position. A free writer takes a batch from lanes no
// other writer holds, so batches are partition-disjoint and each
// partition's batches commit in offset order, while any writer can serve
// any partition: a busy or drained partition never leaves a writer idle
// next to a partition with a backlog (a fixed partition-to-writer mapping
// left one writer with the tail of the skewed partitions).
//
// Memory is bounded: all lanes together hold at most totalCap messages and
// a lane at most its limit; a producer (ConsumeClaim) blocks beyond that,
// which stops sarama from fetching: backpressure.
//
// The limits split totalCap between the lanes in proportion to how far
// each partition is behind its end (at most batchSize each), recomputed
// with every batch taken or done. Equal limits let sarama fetch every
// partition at the same pace, so with skewed partitions (by key) the
// biggest backlog was worked off last, by one writer while the others
// idled: with 6 partitions of 97,000-187,000 events, the smallest was done
// 5 s before the largest. Proportional limits let the partitions furthest
// behind fetch more, so all catch up together and lag stays even.
type lanes struct {
	batchSize int
	flush     time.Duration
	writers   int
	totalCap  int

	mu       sync.Mutex
	closed   bool
	byPart   map[int32]*lane
	all      []*lane
	buffered int // messages in all lanes
	free     int // messages in lanes no writer holds
	// wakeW and wakeP are closed (and replaced) to wake waiting writers
	// and producers; only when someone waits.
	wakeW, wakeP       chan struct{}
	waitingW, waitingP int
	// wakeAt is the free count at which waiting writers may have a full
	// batch: a push that reaches it wakes them.
	wakeAt int
	spare  []*chunk // emptied chunks, reused by push
	// starved is how long writers waited in take while some partition's
	// end lay beyond what had been read of it (takeStarved reads it).
	starved time.Duration
}

type lane struct {
	part int32
	// chunks hold the queue: chunks[0].d[head:] first, then the rest of
	// the chunks, so memory follows what is queued, not the lane's peak.
	chunks  []*chunk
	head    int
	n       int
	busy    bool
	limit   int       // most messages queued before push blocks (rebalance sets it)
	since   time.Time // when the first queued message arrived
	pos     int64     // committed next offset; -1 while kafka_offsets has no row
	hw      int64     // the partition's end offset, as last fetched
	fetched int64     // the offset after the last message pushed
}

const chunkLen = 256

type chunk struct {
	n int
	d [chunkLen]decoded
}

func (ln *lane) len() int { return ln.n }

// backlog is how far the lane's committed position is behind its end.
func (ln *lane) backlog() int64 { return ln.hw - max(ln.pos, 0) }

// rebalance sets each lane's limit to its share of totalCap by backlog,
// between a floor that keeps every lane flowing and batchSize. With
// nothing behind, every lane may hold a batch.
func (l *lanes) rebalance() {
	behind := func(ln *lane) int64 { return max(ln.backlog(), int64(ln.len())) }
	var total int64
	for _, ln := range l.all {
		total += behind(ln)
	}
	floor := max(min(chunkLen, l.batchSize), l.totalCap/(4*max(len(l.all), 1)))
	for _, ln := range l.all {
		ln.limit = l.batchSize
		if total > 0 {
			ln.limit = min(max(int(int64(l.totalCap)*behind(ln)/total), floor), l.batchSize)
		}
	}
}

// held is a lane a writer took a batch from: its partition and committed
// position, which the writer moves to the batch's end on commit.
type held struct {
	Part int32
	Pos  int64
}

func newLanes(batchSize int, flush time.Duration, writers int, positions map[int32]int64) *lanes {
	l := &lanes{
		batchSize: batchSize, flush: flush, writers: writers,
		totalCap: writers * batchSize,
		byPart:   make(map[int32]*lane, len(positions)),
		wakeW:    make(chan struct{}), wakeP: make(chan struct{}),
		wakeAt: int(^uint(0) >> 1),
	}
	for p, pos := range positions {
		ln := &lane{part: p, pos: pos, limit: batchSize}
		l.byPart[p] = ln
		l.all = append(l.all, ln)
	}
	slices.SortFunc(l.all, func(a, b *lane) int { return int(a.part - b.part) })
	return l
}

func (l *lanes) wakeWriters() {
	if l.waitingW > 0 && !l.closed {
		close(l.wakeW)
		l.wakeW = make(chan struct{})
		l.wakeAt = int(^uint(0) >> 1)
	}
}

func (l *lanes) wakeProducers() {
	if l.waitingP > 0 && !l.closed {
		close(l.wakeP)
		l.wakeP = make(chan struct{})
	}
}

// push queues d on its partition's lane, blocking while the lane or the
// lanes are full; hw is the partition's end offset as last fetched. It
// reports false when ctx ended or the lanes closed.
func (l *lanes) push(ctx context.Context, d decoded, hw int64) bool {
	l.mu.Lock()
	ln := l.byPart[d.row.Partition]
	if ln == nil {
		ln = &lane{part: d.row.Partition, pos: -1, limit: l.batchSize}
		l.byPart[d.row.Partition] = ln
		l.all = append(l.all, ln)
	}
	for !l.closed && (ln.len() >= ln.limit || l.buffered >= l.totalCap) {
		ch := l.wakeP
		l.waitingP++
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		l.mu.Lock()
		l.waitingP--
		if ctx.Err() != nil {
			l.mu.Unlock()
			return false
		}
	}
	if l.closed {
		l.mu.Unlock()
		return false
	}
	if k := len(ln.chunks); k == 0 || ln.chunks[k-1].n == chunkLen {
		ln.chunks = append(ln.chunks, l.newChunk())
	}
	last := ln.chunks[len(ln.chunks)-1]
	last.d[last.n] = d
	last.n++
	ln.n++
	ln.hw = max(ln.hw, hw)
	ln.fetched = max(ln.fetched, d.row.Offset+1)
	l.buffered++
	if !ln.busy {
		l.free++
		if ln.len() == 1 || l.free >= l.wakeAt {
			l.wakeWriters()
		}
	}
	if ln.len() == 1 {
		ln.since = time.Now()
	}
	l.mu.Unlock()
	return true
}

// seg is part of a batch: c.d[from:to], a chunk the writer now owns.
type seg struct {
	c        *chunk
	from, to int
}

// take blocks until a batch is due and appends it to segs: messages of up
// to ceil(active lanes / writers) free lanes, at most batchSize in all.
// Lanes whose first message waited flush go first, oldest first; then the
// lanes furthest behind their partition's end, so the longest backlog is
// never left for last. A batch is due once it is full, its oldest message
// has waited flush, the lanes are full, or no batch is being written at all
// (MySQL would idle while it fills; under load, batches fill while the
// other writers' commit). The lanes taken are held until done. It reports
// false when ctx ended or the lanes closed.
func (l *lanes) take(ctx context.Context, segs []seg) ([]seg, []held, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var chosen []*lane
	start, behind := time.Now(), l.unread()
	for {
		if l.closed || ctx.Err() != nil {
			return segs, nil, false
		}
		chosen = chosen[:0]
		active, busy := 0, 0
		for _, ln := range l.all {
			if ln.busy || ln.len() > 0 {
				active++
			}
			if ln.busy {
				busy++
			}
			if !ln.busy && ln.len() > 0 {
				chosen = append(chosen, ln)
			}
		}
		var wait time.Duration = -1
		if len(chosen) > 0 {
			now := time.Now()
			slices.SortFunc(chosen, func(a, b *lane) int {
				aDue, bDue := now.Sub(a.since) >= l.flush, now.Sub(b.since) >= l.flush
				switch {
				case aDue && bDue:
					return a.since.Compare(b.since)
				case aDue != bDue:
					if aDue {
						return -1
					}
					return 1
				}
				return cmp.Compare(b.backlog(), a.backlog())
			})
			chosen = chosen[:min(len(chosen), (active+l.writers-1)/l.writers)]
			sum := 0
			for _, ln := range chosen {
				sum += ln.len()
			}
			age := time.Duration(0)
			for _, ln := range chosen {
				age = max(age, now.Sub(ln.since))
			}
			if sum >= l.batchSize || age >= l.flush || l.buffered >= l.totalCap || busy == 0 {
				if behind {
					l.starved += time.Since(start)
				}
				return l.takeFrom(chosen, segs)
			}
			wait = l.flush - age
			l.wakeAt = min(l.wakeAt, l.free+l.batchSize-sum)
		}
		ch := l.wakeW
		l.waitingW++
		l.mu.Unlock()
		var expired <-chan time.Time
		if wait >= 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		select {
		case <-ch:
		case <-expired:
		case <-ctx.Done():
		}
		l.mu.Lock()
		l.waitingW--
	}
}

// takeFrom moves up to batchSize messages of chosen to segs: whole
// chunks are handed over (the lane starts a new chunk for what comes next),
// and a chunk that does not fit whole is split by copying its first part.
func (l *lanes) takeFrom(chosen []*lane, segs []seg) ([]seg, []held, bool) {
	hs := make([]held, 0, len(chosen))
	room := l.batchSize
	for _, ln := range chosen {
		queued := ln.len()
		k := min(queued, room)
		for left := k; left > 0; {
			c := ln.chunks[0]
			if m := c.n - ln.head; m <= left {
				segs = append(segs, seg{c: c, from: ln.head, to: c.n})
				ln.chunks[0] = nil
				ln.chunks = ln.chunks[1:]
				ln.head = 0
				left -= m
				continue
			}
			part := l.newChunk()
			part.n = copy(part.d[:left], c.d[ln.head:ln.head+left])
			clear(c.d[ln.head : ln.head+left])
			segs = append(segs, seg{c: part, from: 0, to: part.n})
			ln.head += left
			left = 0
		}
		if len(ln.chunks) == 0 {
			ln.chunks = nil // let go of the slice's array; cheap to regrow
		}
		ln.n -= k
		if ln.n > 0 {
			ln.since = time.Now()
		}
		room -= k
		l.buffered -= k
		l.free -= queued
		ln.busy = true
		hs = append(hs, held{Part: ln.part, Pos: ln.pos})
	}
	l.rebalance()
	l.wakeProducers()
	return segs, hs, true
}

// unread reports whether some partition has messages in Kafka beyond
// what has been read of it.
func (l *lanes) unread() bool {
	for _, ln := range l.all {
		if ln.hw > max(ln.fetched, ln.pos) {
			return true
		}
	}
	return false
}

// takeStarved returns the writers' starved time since the last call.
func (l *lanes) takeStarved() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.starved
	l.starved = 0
	return d
}

func (l *lanes) newChunk() *chunk {
	if s := len(l.spare); s > 0 {
		c := l.spare[s-1]
		l.spare = l.spare[:s-1]
		return c
	}
	return new(chunk)
}

// done releases the lanes of a batch with their new positions and takes
// back its chunks.
func (l *lanes) done(hs []held, segs []seg) {
	for _, sg := range segs {
		clear(sg.c.d[:sg.c.n])
		sg.c.n = 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, sg := range segs {
		l.spare = append(l.spare, sg.c)
	}
	for _, h := range hs {
		ln := l.byPart[h.Part]
		ln.busy = false
		ln.pos = h.Pos
		l.free += ln.len()
	}
	l.rebalance()
	l.wakeWriters()
	l.wakeProducers()
}

// close wakes everyone; push and take report false from then on.
func (l *lanes) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	close(l.wakeW)
	close(l.wakeP)
}
