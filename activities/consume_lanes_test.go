package activities

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/store"
)

func msg(p int32, off int64) decoded {
	return decoded{row: store.EventRow{Partition: p, Offset: off}}
}

func offsetsOf(segs []seg) map[int32][]int64 {
	out := map[int32][]int64{}
	for _, sg := range segs {
		for i := sg.from; i < sg.to; i++ {
			d := &sg.c.d[i]
			out[d.row.Partition] = append(out[d.row.Partition], d.row.Offset)
		}
	}
	return out
}

// pushBlocked starts push(d) in a goroutine and fails the test with why
// if it goes through within 50 ms; the channel closes when it does.
func pushBlocked(t *testing.T, l *lanes, d decoded, hw int64, why string) <-chan struct{} {
	t.Helper()
	pushed := make(chan struct{})
	go func() {
		l.push(context.Background(), d, hw)
		close(pushed)
	}()
	select {
	case <-pushed:
		t.Fatal(why)
	case <-time.After(50 * time.Millisecond):
	}
	return pushed
}

// TestLanesDisjointOrderedExactlyOnce: producers on 6 partitions of uneven
// size and 3 writers; no two batches in flight share a partition, every
// offset arrives once and in order, batches respect batchSize, and every
// writer gets work.
func TestLanesDisjointOrderedExactlyOnce(t *testing.T) {
	sizes := map[int32]int64{0: 9000, 1: 12000, 2: 3000, 3: 15000, 4: 1, 5: 7000}
	pos := map[int32]int64{}
	for p := range sizes {
		pos[p] = -1
	}
	const batchSize, writers = 1000, 3
	l := newLanes(batchSize, 5*time.Millisecond, writers, pos)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var prod sync.WaitGroup
	for p, n := range sizes {
		prod.Add(1)
		go func() {
			defer prod.Done()
			for off := int64(0); off < n; off++ {
				if !l.push(ctx, msg(p, off), n) {
					t.Errorf("push %d/%d refused", p, off)
					return
				}
			}
		}()
	}

	var (
		mu       sync.Mutex
		inFlight = map[int32]bool{}
		next     = map[int32]int64{}
		total    atomic.Int64
		perW     [writers]int
	)
	var want int64
	for _, n := range sizes {
		want += n
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var segs []seg
			for total.Load() < want {
				var hs []held
				var ok bool
				segs, hs, ok = l.take(ctx, segs[:0])
				if !ok {
					return
				}
				got := offsetsOf(segs)
				n := 0
				mu.Lock()
				for _, h := range hs {
					if inFlight[h.Part] {
						t.Errorf("partition %d taken by two writers at once", h.Part)
					}
					inFlight[h.Part] = true
				}
				for p, offs := range got {
					for _, o := range offs {
						if o != next[p] {
							t.Errorf("partition %d: got offset %d, want %d", p, o, next[p])
						}
						next[p] = o + 1
						n++
					}
				}
				perW[w] += n
				mu.Unlock()
				if n > batchSize || n == 0 {
					t.Errorf("batch of %d messages (batchSize %d)", n, batchSize)
				}
				time.Sleep(time.Millisecond) // "writing"
				mu.Lock()
				for i := range hs {
					inFlight[hs[i].Part] = false
					hs[i].Pos = next[hs[i].Part]
				}
				mu.Unlock()
				total.Add(int64(n))
				l.done(hs, segs)
				if total.Load() >= want {
					l.close()
				}
			}
		}()
	}
	prod.Wait()
	wg.Wait()
	for p, n := range sizes {
		if next[p] != n {
			t.Errorf("partition %d: delivered up to %d, want %d", p, next[p], n)
		}
	}
	for w, n := range perW {
		if n == 0 {
			t.Errorf("writer %d got no messages: %v", w, perW)
		}
	}
}

// TestLanesBoundMemory: a producer blocks once the lanes hold totalCap
// messages, and continues when a writer takes a batch.
func TestLanesBoundMemory(t *testing.T) {
	l := newLanes(10, time.Hour, 2, map[int32]int64{0: -1, 1: -1, 2: -1})
	ctx := context.Background()
	for off := range int64(10) {
		l.push(ctx, msg(0, off), 100)
		l.push(ctx, msg(1, off), 100)
	}
	pushed := pushBlocked(t, l, msg(2, 0), 100, "push went through with the lanes full (2 writers x 10)")
	segs, hs, ok := l.take(ctx, nil)
	if !ok || len(hs) != 1 {
		t.Fatalf("take: %v lanes, ok %v", hs, ok)
	}
	select {
	case <-pushed:
	case <-time.After(5 * time.Second):
		t.Fatal("push still blocked after a take")
	}
	l.done(hs, segs)
	if l.buffered != 11 {
		t.Fatalf("buffered = %d, want 11", l.buffered)
	}
}

// TestLanesFlushAndIdle: with nothing being written a lone message goes at
// once; with a batch in flight, a partial batch waits for flush.
func TestLanesFlushAndIdle(t *testing.T) {
	const flush = 80 * time.Millisecond
	l := newLanes(1000, flush, 2, map[int32]int64{0: -1, 1: -1})
	ctx := context.Background()
	l.push(ctx, msg(0, 0), 1)
	t0 := time.Now()
	segs0, hs0, _ := l.take(ctx, nil)
	if d := time.Since(t0); d > flush/2 || len(offsetsOf(segs0)[0]) != 1 {
		t.Fatalf("idle pipeline: took %v after %v, want the message at once", offsetsOf(segs0), d)
	}
	l.push(ctx, msg(1, 0), 1)
	t0 = time.Now()
	segs1, _, _ := l.take(ctx, nil)
	if d := time.Since(t0); d < flush*3/4 {
		t.Fatalf("partition 1's lone message went after %v with a batch in flight, want ~%v", d, flush)
	}
	if got := offsetsOf(segs1); len(got[1]) != 1 {
		t.Fatalf("second batch = %v", got)
	}
	l.done(hs0, segs0)
}

// TestLanesLongestBacklogFirst: the lane furthest behind its partition's
// end goes first, and fills the batch before the others.
func TestLanesLongestBacklogFirst(t *testing.T) {
	l := newLanes(4, time.Hour, 2, map[int32]int64{0: 0, 1: 0, 2: 0})
	ctx := context.Background()
	l.byPart[2].busy = true // a batch of partition 2 in flight: the pipeline is not idle
	for off := range int64(3) {
		l.push(ctx, msg(0, off), 10)
		l.push(ctx, msg(1, off), 900)
	}
	segs, hs, _ := l.take(ctx, nil)
	if len(hs) != 2 || hs[0].Part != 1 || hs[1].Part != 0 {
		t.Fatalf("took lanes %v, want partition 1 (900 behind), then partition 0 (10 behind)", hs)
	}
	if got := offsetsOf(segs); len(got[1]) != 3 || len(got[0]) != 1 {
		t.Fatalf("batch = %v, want 3 messages of partition 1 and 1 of partition 0", got)
	}
	if l.byPart[0].len() != 2 {
		t.Fatalf("partition 0 keeps %d queued, want 2", l.byPart[0].len())
	}
}

// TestLanesClose: close releases a blocked producer and a waiting writer.
func TestLanesClose(t *testing.T) {
	l := newLanes(1, time.Hour, 1, map[int32]int64{0: -1})
	ctx := context.Background()
	l.push(ctx, msg(0, 0), 5)
	l.byPart[0].busy = true
	res := make(chan bool, 2)
	go func() { res <- l.push(ctx, msg(0, 1), 5) }()
	go func() { _, _, ok := l.take(ctx, nil); res <- ok }()
	time.Sleep(20 * time.Millisecond)
	l.close()
	for range 2 {
		select {
		case ok := <-res:
			if ok {
				t.Fatal("push or take succeeded after close")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("close did not release a waiter")
		}
	}
}

// TestLanesLimitsFollowBacklog: once more is behind than the lanes hold,
// their room goes to the partitions furthest behind, a full batch each,
// while one nearly caught up blocks at a chunk; when everything behind
// fits, every lane may hold a batch again.
func TestLanesLimitsFollowBacklog(t *testing.T) {
	const batch = 1000
	l := newLanes(batch, time.Hour, 2, map[int32]int64{0: 0, 1: 0, 2: 0})
	ctx := context.Background()
	l.push(ctx, msg(0, 0), 100000)
	l.push(ctx, msg(1, 0), 50000)
	l.push(ctx, msg(2, 0), 2000)
	segs, hs, ok := l.take(ctx, nil) // idle pipeline: goes at once, and sets the limits
	if !ok {
		t.Fatal("take failed")
	}
	l.done(hs, segs)
	for p, want := range map[int32]int{0: batch, 1: batch, 2: chunkLen} {
		if got := l.byPart[p].limit; got != want {
			t.Errorf("limit of partition %d (%d behind) = %d, want %d", p, l.byPart[p].backlog(), got, want)
		}
	}
	// The first take held two lanes (three lanes, two writers), the two
	// furthest behind: the shallow lane still queues its first message.
	if n := l.byPart[2].len(); n != 1 {
		t.Fatalf("shallow lane queues %d, want 1", n)
	}
	for off := range int64(chunkLen - 1) {
		l.push(ctx, msg(2, off+1), 2000)
	}
	blocked := pushBlocked(t, l, msg(2, chunkLen), 2000, fmt.Sprintf("the shallow lane queued past its limit %d", l.byPart[2].limit))
	for off := range int64(batch - 1) {
		if !l.push(ctx, msg(0, off+1), 100000) {
			t.Fatal("push to the deep lane failed")
		}
	}
	// Once what is behind fits in the lanes, every lane may hold a batch.
	l.mu.Lock()
	for _, ln := range l.all {
		ln.hw = ln.pos + int64(ln.len())
	}
	l.rebalance()
	l.mu.Unlock()
	for p := range int32(3) {
		if got := l.byPart[p].limit; got != batch {
			t.Errorf("limit of partition %d with everything behind in the lanes = %d, want %d", p, got, batch)
		}
	}
	l.close()
	<-blocked
}

// TestLanesPauseAtLimit: with pause set, a lane at its limit pauses its
// partition instead of blocking its producer, which blocks only slack
// messages later; a take resumes the partition.
func TestLanesPauseAtLimit(t *testing.T) {
	l := newLanes(4, time.Hour, 2, map[int32]int64{0: -1, 1: -1}) // room for 8
	var mu sync.Mutex
	var calls []bool
	l.pause = func(p int32, paused bool) {
		mu.Lock()
		defer mu.Unlock()
		if p != 0 {
			t.Errorf("pause(%d, %v): partition 1 never reached its limit", p, paused)
		}
		calls = append(calls, paused)
	}
	l.slack = 2
	ctx := context.Background()
	for off := range int64(4) {
		l.push(ctx, msg(0, off), 10)
	}
	mu.Lock()
	if len(calls) != 1 || !calls[0] {
		t.Fatalf("pause calls at the limit = %v, want [true]", calls)
	}
	mu.Unlock()
	l.push(ctx, msg(0, 4), 10)
	l.push(ctx, msg(0, 5), 10)
	blocked := pushBlocked(t, l, msg(0, 6), 10, "push went through past limit + slack")
	segs, hs, ok := l.take(ctx, nil)
	if !ok || len(offsetsOf(segs)[0]) != 4 {
		t.Fatalf("take = %v, %v", offsetsOf(segs), ok)
	}
	<-blocked // 3 queued: below the limit again
	mu.Lock()
	if len(calls) != 2 || calls[1] {
		t.Fatalf("pause calls after the take = %v, want [true false]", calls)
	}
	mu.Unlock()
	l.done(hs, segs)
}

// TestLanesFewestLanesFillABatch: a writer takes a full batch from as few
// lanes as hold one, before a partial lane that waited flush; the partial
// lane goes when no full batch is left.
func TestLanesFewestLanesFillABatch(t *testing.T) {
	const flush = 20 * time.Millisecond
	l := newLanes(10, flush, 2, map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0})
	ctx := context.Background()
	l.byPart[3].busy = true // a batch in flight: the pipeline is not idle
	l.push(ctx, msg(2, 0), 100)
	for off := range int64(6) {
		l.push(ctx, msg(0, off), 100)
	}
	for off := range int64(10) {
		l.push(ctx, msg(1, off), 100)
	}
	time.Sleep(2 * flush) // partition 2's message is due
	segs, hs, _ := l.take(ctx, nil)
	if got := offsetsOf(segs); len(hs) != 1 || hs[0].Part != 1 || len(got[1]) != 10 {
		t.Fatalf("took lanes %v, batch %v: want partition 1's 10 messages alone", hs, got)
	}
	segs, hs, _ = l.take(ctx, segs[:0])
	if got := offsetsOf(segs); len(hs) != 2 || hs[0].Part != 2 || len(got[2]) != 1 || len(got[0]) != 6 {
		t.Fatalf("took lanes %v, batch %v: want partition 2's due message, then partition 0's 6", hs, got)
	}
}

// TestLanesStarvedTime: a writer's wait counts as starved only while Kafka
// holds more of a partition than has been read.
func TestLanesStarvedTime(t *testing.T) {
	ctx := context.Background()
	wait := func(l *lanes, off, hw int64) {
		t.Helper()
		l.byPart[1].busy = true // another batch in flight: take waits for flush
		l.push(ctx, msg(0, off), hw)
		if _, hs, ok := l.take(ctx, nil); !ok || len(hs) != 1 {
			t.Fatalf("take = %v, %v", hs, ok)
		}
		l.byPart[0].busy, l.byPart[1].busy = false, false
	}
	const flush = 60 * time.Millisecond
	l := newLanes(100, flush, 2, map[int32]int64{0: -1, 1: -1})
	wait(l, 0, 1) // partition 0 read up to its end
	if d := l.takeStarved(); d != 0 {
		t.Fatalf("starved %s with nothing left unread, want 0", d)
	}
	wait(l, 1, 50) // 48 messages of partition 0 not read yet
	if d := l.takeStarved(); d < flush/2 {
		t.Fatalf("starved %s while waiting %s with messages unread, want about %s", d, flush, flush)
	}
	if d := l.takeStarved(); d != 0 {
		t.Fatalf("takeStarved did not reset: %s", d)
	}
}
