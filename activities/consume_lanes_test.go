package activities

import (
	"context"
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
	pushed := make(chan struct{})
	go func() {
		l.push(ctx, msg(2, 0), 100)
		close(pushed)
	}()
	select {
	case <-pushed:
		t.Fatal("push went through with the lanes full (2 writers x 10)")
	case <-time.After(50 * time.Millisecond):
	}
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

// TestLanesLimitsFollowBacklog: the lanes' room is shared by backlog, so
// the partition furthest behind may queue a full batch while one nearly
// caught up blocks at the floor, and they catch up together.
func TestLanesLimitsFollowBacklog(t *testing.T) {
	const batch = 1000
	l := newLanes(batch, time.Hour, 2, map[int32]int64{0: 0, 1: 0})
	ctx := context.Background()
	l.push(ctx, msg(0, 0), 100000)
	l.push(ctx, msg(1, 0), 2000)
	segs, hs, ok := l.take(ctx, nil) // idle pipeline: goes at once, and sets the limits
	if !ok {
		t.Fatal("take failed")
	}
	l.done(hs, segs)
	if got := l.byPart[0].limit; got != batch {
		t.Errorf("limit of the lane 100,000 behind = %d, want %d (a full batch)", got, batch)
	}
	if got := l.byPart[1].limit; got != chunkLen {
		t.Errorf("limit of the lane 2,000 behind = %d, want the floor %d", got, chunkLen)
	}
	// The shallow lane's producer blocks at its limit; the deep one's does
	// not. The first take held one lane (two lanes, two writers): the
	// shallow lane still queues its first message.
	if n := l.byPart[1].len(); n != 1 {
		t.Fatalf("shallow lane queues %d, want 1", n)
	}
	for off := range int64(chunkLen - 1) {
		l.push(ctx, msg(1, off+1), 2000)
	}
	blocked := make(chan struct{})
	go func() {
		l.push(ctx, msg(1, chunkLen), 2000)
		close(blocked)
	}()
	for off := range int64(batch - 1) {
		if !l.push(ctx, msg(0, off+1), 100000) {
			t.Fatal("push to the deep lane failed")
		}
	}
	select {
	case <-blocked:
		t.Fatalf("the shallow lane queued %d, past its limit %d", l.byPart[1].len(), l.byPart[1].limit)
	case <-time.After(50 * time.Millisecond):
	}
	// Once nothing is behind, every lane may hold a batch again.
	l.byPart[0].hw, l.byPart[1].hw = 0, 0
	l.byPart[0].n, l.byPart[1].n = 0, 0
	l.mu.Lock()
	l.rebalance()
	l.mu.Unlock()
	if l.byPart[0].limit != batch || l.byPart[1].limit != batch {
		t.Errorf("limits with nothing behind = %d, %d, want %d", l.byPart[0].limit, l.byPart[1].limit, batch)
	}
	l.close()
	<-blocked
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
