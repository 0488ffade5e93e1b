package activities

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// lanes hands the messages of a consumer generation's partitions to its
// writers. Each partition is a lane: a queue of decoded messages plus the
// partition's committed position. A free writer takes a batch from lanes no
// other writer holds, so batches are partition-disjoint and each
// partition's batches commit in offset order, while any writer can serve
// any partition: a busy or drained partition never leaves a writer idle
// next to a partition with a backlog (a fixed partition-to-writer mapping
// left one writer with the tail of the skewed partitions).
//
// Memory is bounded: all lanes together hold at most totalCap messages; the
// producer (the consumer's poll loop) blocks beyond that, which stops the
// Kafka client from fetching: backpressure. A lane at its limit pauses its
// partition's fetches (or, without pause, blocks its producer).
//
// The limits share totalCap between the lanes by how far each partition
// is behind its end (see rebalance). Equal limits let the client fetch every
// partition at the same pace, so with skewed partitions (by key) the
// biggest backlog was worked off last, by one writer while the others
// idled: with 6 partitions of 97,000-187,000 events, the smallest was done
// 5 s before the largest. Room for the partitions furthest behind lets
// them fetch more, so all catch up together and lag stays even.
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
	order  []*lane  // rebalance's scratch: the lanes by backlog
	// pause, when set, stops (true) or resumes (false) fetching a
	// partition: a lane at its limit is paused rather than blocked, and a
	// producer blocks only slack messages past the limit (what the poll
	// in hand still holds). One poll loop serves every partition, so a
	// producer blocked on one lane would stall them all.
	pause func(part int32, paused bool)
	slack int
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
	paused  bool      // fetching stopped: len >= limit (with lanes.pause)
	limit   int       // most messages queued before the partition pauses (rebalance sets it)
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

// rebalance sets each lane's limit. While everything behind fits in
// totalCap, every lane may hold a batch. Beyond that the room goes to the
// lanes furthest behind first, a full batch each (greedy), and the others
// keep a chunk: with keys skewed over the partitions, the longest backlogs
// are worked off first, so all catch up together, and a writer finds a
// whole batch in one lane. A batch of one partition folds more events into
// each item_counts_minute row than the same batch spread over several (the
// partitions' items are disjoint: Kafka partitions by item): in the
// benchmark's stream 0.055 count rows per event at 50,000 events of one
// partition against 0.118 at three partitions' 16,667 each.
func (l *lanes) rebalance() {
	behind := func(ln *lane) int64 { return max(ln.backlog(), int64(ln.len())) }
	var total int64
	for _, ln := range l.all {
		total += behind(ln)
	}
	if total <= int64(l.totalCap) {
		for _, ln := range l.all {
			ln.limit = l.batchSize
		}
	} else {
		l.order = append(l.order[:0], l.all...)
		slices.SortStableFunc(l.order, func(a, b *lane) int { return cmp.Compare(behind(b), behind(a)) })
		floor := min(chunkLen, l.batchSize)
		left := int64(l.totalCap)
		for _, ln := range l.order {
			share := min(int64(l.batchSize), behind(ln), left)
			left -= share
			ln.limit = max(int(share), floor)
		}
	}
	for _, ln := range l.all {
		l.flow(ln)
	}
}

// flow pauses a lane's partition at its limit and resumes it below.
func (l *lanes) flow(ln *lane) {
	if l.pause == nil {
		return
	}
	if full := ln.len() >= ln.limit; full != ln.paused {
		ln.paused = full
		l.pause(ln.part, full)
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

// push queues d on its partition's lane, blocking while the lanes are full
// or the lane is slack past its limit; hw is the partition's end offset as last fetched. It
// reports false when ctx ended or the lanes closed.
func (l *lanes) push(ctx context.Context, d decoded, hw int64) bool {
	l.mu.Lock()
	ln := l.byPart[d.row.Partition]
	if ln == nil {
		ln = &lane{part: d.row.Partition, pos: -1, limit: l.batchSize}
		l.byPart[d.row.Partition] = ln
		l.all = append(l.all, ln)
	}
	for !l.closed && (ln.len() >= ln.limit+l.slack || l.buffered >= l.totalCap) {
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
	l.flow(ln)
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
// A full batch comes from the fullest lanes, as few as fill it (one, under
// load: see rebalance). A batch is due once it is full, the lanes are full,
// or no batch is being written at all (MySQL would idle while it fills;
// under load, batches fill while the other writers commit). Otherwise a
// partial batch goes once a lane's first message has waited flush: the
// lanes that waited go first, oldest first, then the lanes furthest behind
// their partition's end. The lanes taken are held until done. It reports
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
			age := time.Duration(0)
			for _, ln := range chosen {
				age = max(age, now.Sub(ln.since))
			}
			most := (active + l.writers - 1) / l.writers
			// The fullest lanes first, as few as fill a batch.
			slices.SortFunc(chosen, func(a, b *lane) int {
				if c := cmp.Compare(b.len(), a.len()); c != 0 {
					return c
				}
				return cmp.Compare(b.backlog(), a.backlog())
			})
			n, sum := 0, 0
			for n < min(len(chosen), most) && sum < l.batchSize {
				sum += chosen[n].len()
				n++
			}
			due := sum >= l.batchSize || l.buffered >= l.totalCap || busy == 0
			if !due && age >= l.flush {
				// A partial batch: the lanes that waited flush go
				// first, oldest first, then the furthest behind.
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
				n, due = min(len(chosen), most), true
			}
			if due {
				if behind {
					l.starved += time.Since(start)
				}
				return l.takeFrom(chosen[:n], segs)
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

// isClosed reports whether close was called.
func (l *lanes) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
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
