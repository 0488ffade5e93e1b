package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/schemas"
)

const instrumentation = "github.com/sluicedata/sluice/activities"

// maxBatchLinks bounds the span links a batch span carries to the traces of
// the messages in it.
const maxBatchLinks = 128

// errFenced is the cause given to a consumer client that lost an offset race.
var errFenced = errors.New("offset fenced")

// Consume pulls the topic with a Kafka consumer group and writes each batch
// to MySQL in one transaction (raw events, minute counts, dead letters and
// next offsets; see store.Writer). Positions come from kafka_offsets, never
// from Kafka's committed offsets, so a restarted attempt resumes exactly
// where the last committed batch ended. It heartbeats its progress every
// second and runs until cancelled or until SessionSeconds have passed.
func (a *Activities) Consume(ctx context.Context, in ConsumeInput) (ConsumeProgress, error) {
	in = in.WithDefaults()
	if err := errors.Join(in.Validate(), in.validateUntil()); err != nil {
		return ConsumeProgress{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", err)
	}
	info := activity.GetInfo(ctx)
	log := a.logger.With("pipeline", in.Pipeline, "topic", in.Topic, "attempt", info.Attempt)
	if activity.HasHeartbeatDetails(ctx) {
		var prev ConsumeProgress
		if err := activity.GetHeartbeatDetails(ctx, &prev); err == nil {
			log.Info("resuming consume; positions come from kafka_offsets", "previous_messages", prev.Messages, "previous_lag", prev.Lag)
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if in.SessionSeconds > 0 {
		var stop context.CancelFunc
		runCtx, stop = context.WithTimeout(runCtx, time.Duration(in.SessionSeconds)*time.Second)
		defer stop()
	}

	// A stopping worker ends the session at once, so the next session runs
	// on a live worker instead of waiting for the worker's stop timeout or a
	// heartbeat timeout.
	var workerStopping atomic.Bool
	go func() {
		select {
		case <-activity.GetWorkerStopChannel(ctx):
			workerStopping.Store(true)
			cancel()
		case <-runCtx.Done():
		}
	}()

	c := newConsumer(a, in, log)
	defer c.observe()()
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		lastSignal := time.Now()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				snap := c.snapshot()
				activity.RecordHeartbeat(ctx, snap)
				if a.temporal != nil && in.ProgressSeconds > 0 && time.Since(lastSignal) >= time.Duration(in.ProgressSeconds)*time.Second {
					lastSignal = time.Now()
					sctx, cancel := context.WithTimeout(runCtx, 2*time.Second)
					err := a.temporal.SignalWorkflow(sctx, info.WorkflowExecution.ID, info.WorkflowExecution.RunID,
						ProgressSignalName, ProgressSignal{Slot: in.Slot, Progress: snap})
					cancel()
					if err != nil && runCtx.Err() == nil {
						log.Debug("signalling progress", "err", err)
					}
				}
			}
		}
	}()
	err := c.run(runCtx)
	cancel()
	<-hbDone
	final := c.snapshot()
	activity.RecordHeartbeat(ctx, final)
	if errors.Is(ctx.Err(), context.Canceled) {
		// Cancelled (pause): the workflow gets the final progress as the
		// cancellation's details.
		return final, temporal.NewCanceledError(final)
	}
	if ctx.Err() != nil {
		return final, ctx.Err()
	}
	if workerStopping.Load() {
		// End the session normally: the workflow starts the next one, which
		// any live worker picks up (no error, no retry backoff).
		log.Info("worker stopping; consume session ends here and continues on another worker")
		return final, nil
	}
	if err != nil {
		return final, err
	}
	return final, nil
}

// ConsumeLoop runs the same consume-and-write loop as the Consume activity
// outside Temporal (benchmarks and tools): no heartbeats, no signals.
// progress, when not nil, gets a snapshot every second. It runs until ctx
// is done or in.SessionSeconds pass, and returns the final progress.
func (a *Activities) ConsumeLoop(ctx context.Context, in ConsumeInput, progress func(ConsumeProgress)) (ConsumeProgress, error) {
	in = in.WithDefaults()
	if err := errors.Join(in.Validate(), in.validateUntil()); err != nil {
		return ConsumeProgress{}, err
	}
	if in.SessionSeconds > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(in.SessionSeconds)*time.Second)
		defer cancel()
	}
	c := newConsumer(a, in, a.logger.With("pipeline", in.Pipeline, "topic", in.Topic))
	defer c.observe()()
	if progress != nil {
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					progress(c.snapshot())
				}
			}
		}()
	}
	err := c.run(ctx)
	return c.snapshot(), err
}

// decoded is a consumed message after decoding. It keeps the raw bytes
// only when they are going to dead_letters, and it is small: a lane may
// queue tens of thousands. Its row is what the writer commits, by
// reference: a batch is not copied out of the lanes (the copy was a tenth
// of the worker's live heap, heap profile).
type decoded struct {
	row    store.EventRow     // the event (when bad is nil) and its partition and offset
	bad    *badMessage        // set when the message does not decode
	parent *trace.SpanContext // the producer's trace, when the headers carry one
	// skipTo > 0 marks no message but the end of a bounded replay's
	// partition: offset is that of the first message at or past it, so
	// everything deliverable below was delivered and the position moves to
	// skipTo (over offsets never delivered: transaction markers, compacted
	// records).
	skipTo int64
}

// badMessage is a message bound for dead_letters.
type badMessage struct {
	err error
	raw []byte
}

type consumer struct {
	a      *Activities
	in     ConsumeInput
	log    *slog.Logger
	writer *store.Writer
	tracer trace.Tracer
	m      consumeMetrics

	// reached is set once a bounded replay is complete (UntilOffsets).
	reached atomic.Bool

	mu       sync.Mutex
	prog     ConsumeProgress
	parts    map[int32]*PartitionProgress
	rateMark time.Time
	rateMsgs int64
}

type consumeMetrics struct {
	messages, inserted, duplicates, dead metric.Int64Counter
	batchLatency                         metric.Float64Histogram
	lag                                  metric.Int64ObservableGauge
	rate                                 metric.Float64ObservableGauge
}

func newConsumer(a *Activities, in ConsumeInput, log *slog.Logger) *consumer {
	meter := otel.Meter(instrumentation)
	var m consumeMetrics
	m.messages, _ = meter.Int64Counter("sluice.consume.messages", metric.WithDescription("Kafka messages consumed and committed"))
	m.inserted, _ = meter.Int64Counter("sluice.consume.events_inserted", metric.WithDescription("new rows written to events"))
	m.duplicates, _ = meter.Int64Counter("sluice.consume.duplicates", metric.WithDescription("events already stored (same event_date, event_id)"))
	m.dead, _ = meter.Int64Counter("sluice.consume.dead_letters", metric.WithDescription("messages parked in dead_letters"))
	m.batchLatency, _ = meter.Float64Histogram("sluice.consume.batch_latency", metric.WithUnit("ms"), metric.WithDescription("MySQL transaction latency per batch"))
	m.lag, _ = meter.Int64ObservableGauge("sluice.consume.lag", metric.WithDescription("messages in Kafka not yet committed to MySQL, per partition"))
	m.rate, _ = meter.Float64ObservableGauge("sluice.consume.rate", metric.WithUnit("{message}/s"), metric.WithDescription("messages committed per second"))
	c := &consumer{
		a: a, in: in, log: log,
		writer:   &store.Writer{DB: a.db},
		tracer:   otel.Tracer(instrumentation),
		m:        m,
		parts:    map[int32]*PartitionProgress{},
		rateMark: time.Now(),
	}
	c.prog.Pipeline, c.prog.Topic, c.prog.Slot = in.Pipeline, in.Topic, in.Slot
	return c
}

// observe registers the lag and rate gauges for this consumer until the
// returned function is called.
func (c *consumer) observe() func() {
	meter := otel.Meter(instrumentation)
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		snap := c.snapshot()
		base := []attribute.KeyValue{attribute.String("sluice.pipeline", c.in.Pipeline), attribute.String("messaging.destination.name", c.in.Topic)}
		for _, p := range snap.Partitions {
			o.ObserveInt64(c.m.lag, p.Lag, metric.WithAttributes(append(base, attribute.Int("messaging.destination.partition.id", int(p.Partition)))...))
		}
		o.ObserveFloat64(c.m.rate, snap.EventsPerSec, metric.WithAttributes(append(base, attribute.Int("sluice.slot", c.in.Slot))...))
		return nil
	}, c.m.lag, c.m.rate)
	if err != nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

// Consumer client settings.
const (
	// pollMax is the most records one poll hands the loop. A lane may
	// take up to this many past its limit (the poll was taken before its
	// partition paused), so the lanes' slack is twice this.
	pollMax = 4096
	// fetchMaxBytes bounds one fetch response, which the client holds
	// until the loop has polled all of it: 1 MiB is ~39,000 of the
	// benchmark's events (27 bytes each with lz4), about 7 MB once
	// decompressed. fetchMaxPartBytes bounds a partition's share: pausing
	// a partition drops what the client holds of it, to be fetched
	// again on resume. In (b) of the benchmark the client read 10 % more
	// records than it delivered at 256 KiB, 4.5 % at 128 KiB.
	fetchMaxBytes     = 1 << 20
	fetchMaxPartBytes = 128 << 10
)

// clientOpts returns the franz-go options of one consumer group client
// whose group callbacks go to g.
func (c *consumer) clientOpts(g *groupRun) ([]kgo.Opt, error) {
	opts, err := c.a.kafka.Franz()
	if err != nil {
		return nil, err
	}
	// Where a partition starts that kafka_offsets and the group know
	// nothing of.
	reset := kgo.NewOffset().AtStart()
	if c.in.StartFrom == "newest" {
		reset = kgo.NewOffset().AtEnd()
	}
	buffers := new(batchBuffers)
	return append(opts,
		kgo.ConsumerGroup(c.in.Group),
		kgo.ConsumeTopics(c.in.Topic),
		kgo.ConsumeResetOffset(reset),
		// Range, as sarama's members of the same group used: every
		// rebalance revokes everything (eager), and a generation's
		// partitions start from kafka_offsets together.
		kgo.Balancers(kgo.RangeBalancer()),
		// A dead member (worker killed) holds its partitions until this
		// expires.
		kgo.SessionTimeout(6*time.Second),
		// A member learns of a rebalance (another worker joined, say)
		// from a heartbeat's reply: the partitions meant for a new
		// member sit idle until then.
		kgo.HeartbeatInterval(500*time.Millisecond),
		// Members leave a generation within a second or two (the
		// writers' transactions in flight); a member that has not
		// rejoined by then is dropped from the next generation.
		kgo.RebalanceTimeout(8*time.Second),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartBytes),
		kgo.WithPools(buffers),
		kgo.WithHooks(buffers),
		// The group's committed offsets are informational (kafka_offsets
		// is the truth): what the writers committed to MySQL is marked
		// and committed to the group every second.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		// No rebalance runs between a poll and the loop's look at the
		// current generation, so it knows whose records it holds.
		kgo.BlockRebalanceOnPoll(),
		kgo.AdjustFetchOffsetsFn(g.assigned),
		kgo.OnPartitionsRevoked(g.revoked),
		kgo.OnPartitionsLost(g.lost),
		kgo.WithLogger(kgoLogger{c.log}),
	), nil
}

// run consumes until ctx is done. A fenced client (another attempt moved a
// partition's offset) is torn down and rebuilt from kafka_offsets.
func (c *consumer) run(ctx context.Context) error {
	if c.in.UntilOffsets != nil {
		// A bounded replay ends when MySQL says every partition reached
		// its end: checked first, then every 250 ms while consuming.
		stored, err := loadOffsetsRetrying(ctx, c)
		if err != nil {
			return nil // ctx ended
		}
		if c.in.UntilReached(stored) {
			c.reached.Store(true)
			return nil
		}
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		go c.watchUntil(ctx, stop)
	}
	// End offsets come from a separate client every couple of seconds, so
	// the reported lag stays true while backpressure stops fetching.
	if sc, err := c.a.kafka.Sarama(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidConfig", err)
	} else if oc, err := sarama.NewClient(c.a.kafka.Brokers, sc); err == nil {
		defer oc.Close()
		go c.refreshHighWater(ctx, oc)
	} else {
		c.log.Warn("no client for end offsets; lag comes from fetches only", "err", err)
	}
	for ctx.Err() == nil {
		g := &groupRun{c: c, clReady: make(chan struct{}), grace: revokeGrace}
		opts, err := c.clientOpts(g)
		var cl *kgo.Client
		if err == nil {
			cl, err = kgo.NewClient(opts...)
		}
		if err != nil {
			return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidConfig", err)
		}
		runCtx, cancel := context.WithCancelCause(ctx)
		g.cl, g.ctx, g.cancel = cl, runCtx, cancel
		close(g.clReady)
		g.poll()
		cause := context.Cause(runCtx)
		cancel(nil)
		g.close()
		if errors.Is(cause, errFenced) {
			c.mu.Lock()
			c.prog.Fenced++
			c.mu.Unlock()
			c.log.Warn("offset fenced by another attempt; reloading positions from kafka_offsets")
		}
	}
	return nil
}

// watchUntil polls kafka_offsets until a bounded replay is complete, then
// stops the consumer.
func (c *consumer) watchUntil(ctx context.Context, stop context.CancelFunc) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stored, err := store.LoadOffsets(ctx, c.a.db, c.in.Pipeline, c.in.Topic)
		if err != nil {
			continue // the writers report MySQL trouble
		}
		if c.in.UntilReached(stored) {
			c.reached.Store(true)
			c.log.Info("bounded replay complete", "until_offsets", c.in.UntilOffsets)
			stop()
			return
		}
	}
}

// groupRun is one consumer group client: a poll loop, and a generation
// (lanes and writers) for each assignment of partitions the group makes.
type groupRun struct {
	c       *consumer
	cl      *kgo.Client
	clReady chan struct{} // closed once cl, ctx and cancel are set
	ctx     context.Context
	cancel  context.CancelCauseFunc

	grace time.Duration // revokeGrace, shorter in tests

	mu  sync.Mutex
	gen *generation
}

// generation is one assignment's lanes and writers, and the poll loop's
// view of its partitions.
type generation struct {
	lanes  *lanes
	cancel context.CancelFunc
	wg     sync.WaitGroup
	parts  map[int32]*claim // the poll loop's only
}

// claim is the poll loop's state of one assigned partition: where a
// bounded replay stops (-1: unbounded), and whether that end was handed
// to the lanes.
type claim struct {
	until  int64
	marked bool
}

// assigned starts a generation for the partitions of offsets (all of this
// member's: every rebalance revokes everything first) and moves each
// partition's fetch position to kafka_offsets'.
func (g *groupRun) assigned(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	c := g.c
	select {
	case <-g.clReady:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	stored, err := loadOffsetsRetrying(ctx, c)
	if err != nil {
		return nil, err
	}
	g.endGeneration() // a lost generation may not have been told
	claimed := offsets[c.in.Topic]
	c.mu.Lock()
	c.parts = map[int32]*PartitionProgress{} // only what this generation owns
	c.mu.Unlock()
	positions := make(map[int32]int64, len(claimed))
	parts := make(map[int32]*claim, len(claimed))
	for p := range claimed {
		pos, ok := stored[p]
		if ok {
			claimed[p] = kgo.NewOffset().At(pos).WithEpoch(-1)
		} else {
			pos = -1 // the group's committed offset, or start_from
		}
		positions[p] = pos
		c.setPosition(p, pos, -1)
		ps := &claim{until: -1}
		if c.in.UntilOffsets != nil {
			// A bounded replay consumes a listed partition below its
			// until offset and nothing of an unlisted one.
			ps.until = c.in.UntilOffsets[p]
		}
		parts[p] = ps
	}
	// Partitions paused by the last generation's lanes: the new lanes
	// start empty.
	if paused := g.cl.PauseFetchPartitions(nil); len(paused) > 0 {
		g.cl.ResumeFetchPartitions(paused)
	}
	gctx, cancel := context.WithCancel(g.ctx)
	gen := &generation{cancel: cancel, parts: parts}
	gen.lanes = newLanes(c.in.BatchSize, time.Duration(c.in.FlushMillis)*time.Millisecond, c.in.Writers, positions)
	topic := c.in.Topic
	gen.lanes.pause = func(p int32, paused bool) {
		if paused {
			g.cl.PauseFetchPartitions(map[string][]int32{topic: {p}})
		} else {
			g.cl.ResumeFetchPartitions(map[string][]int32{topic: {p}})
		}
	}
	gen.lanes.slack = 2 * pollMax
	for range c.in.Writers {
		w := &partWriter{c: c, mark: g.mark, cancel: g.cancel, lanes: gen.lanes}
		gen.wg.Add(1)
		go func() {
			defer gen.wg.Done()
			w.run(gctx)
		}()
	}
	g.mu.Lock()
	g.gen = gen
	g.mu.Unlock()
	c.log.Info("consumer session started", "partitions", slices.Sorted(maps.Keys(claimed)), "stored_offsets", stored)
	return offsets, nil
}

// revoked ends the generation (the writers finish or abandon the batch
// in flight) and commits to the group what they committed to MySQL.
func (g *groupRun) revoked(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
	g.endGeneration()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := cl.CommitMarkedOffsets(cctx); err != nil {
		g.c.log.Debug("committing offsets to the consumer group", "err", err)
	}
}

// lost ends the generation: the group dropped this member (its session
// timed out, say), so its commits would be refused.
func (g *groupRun) lost(context.Context, *kgo.Client, map[string][]int32) {
	g.endGeneration()
}

// revokeGrace is how long a revoked generation's writers may go on with
// the batch they are writing (a 50,000-event batch takes a few hundred
// milliseconds) before it is abandoned. It is well within the rebalance
// timeout.
const revokeGrace = 3 * time.Second

// endGeneration stops the current generation: its lanes close, so no
// writer starts another batch and a blocked push returns; a batch being
// written may still commit (the work is not thrown away, and the offset
// fence keeps it exact) for up to g.grace, then it is cancelled. It
// returns once the writers are gone.
func (g *groupRun) endGeneration() {
	g.mu.Lock()
	gen := g.gen
	g.gen = nil
	g.mu.Unlock()
	if gen == nil {
		return
	}
	gen.lanes.close()
	done := make(chan struct{})
	go func() {
		gen.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(g.grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		g.c.log.Warn("abandoning the batches still being written by a revoked consumer generation", "after", g.grace)
	}
	gen.cancel()
	<-done
}

// mark records a committed batch's end as the group's next offset.
func (g *groupRun) mark(p int32, next int64) {
	g.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{g.c.in.Topic: {p: {Epoch: -1, Offset: next}}})
}

// close leaves the group (within a few seconds even while Kafka is down)
// and closes the client.
func (g *groupRun) close() {
	g.cl.AllowRebalance()
	lctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if err := g.cl.LeaveGroupContext(lctx); err != nil {
		g.c.log.Debug("leaving the consumer group", "err", err)
	}
	cancel()
	g.cl.Close()
	g.endGeneration()
}

// poll reads the assigned partitions and pushes their decoded messages to
// the generation's lanes until g.ctx ends. A push blocks while the lanes
// are full: the loop stops polling, and the client stops fetching once
// its one buffered fetch is full: backpressure. The loop lets rebalances
// run as soon as it knows which generation a poll's records belong to, so
// a push blocked on full lanes (MySQL down) never holds one up: the
// revocation ends the generation, its lanes close, and the records left
// are read again from kafka_offsets by the next generation.
func (g *groupRun) poll() {
	c := g.c
	var lastErr time.Time
	for {
		fs := g.cl.PollRecords(g.ctx, pollMax)
		g.mu.Lock()
		gen := g.gen
		g.mu.Unlock()
		g.cl.AllowRebalance()
		if g.ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if topic == "" { // not a partition's: the group's, say
				err = fmt.Errorf("consuming %s: %w", c.in.Topic, err)
			} else {
				err = fmt.Errorf("fetching %s/%d: %w", topic, p, err)
			}
			c.setError(err)
			if time.Since(lastErr) > 5*time.Second {
				lastErr = time.Now()
				c.log.Warn("kafka client failed; it retries", "err", err)
			}
		})
		if gen != nil {
			g.push(gen, fs)
		}
	}
}

// push decodes the records of fs and queues them on gen's lanes. It stops
// early when the lanes close.
func (g *groupRun) push(gen *generation, fs kgo.Fetches) {
	// The clock for the decoder's "not too far in the future" check (24 h
	// of slack), once per poll.
	now := time.Now()
	open := true
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		ps := gen.parts[fp.Partition]
		if !open || len(fp.Records) == 0 || ps == nil { // nil: not gen's (cannot be: gen was current at the poll)
			return
		}
		g.c.setHighWater(fp.Partition, fp.HighWatermark)
		open = g.pushPartition(gen, ps, &fp.FetchPartition, now)
	})
}

// pushPartition queues one partition's records of a poll. It reports
// false when the lanes closed.
func (g *groupRun) pushPartition(gen *generation, ps *claim, fp *kgo.FetchPartition, now time.Time) bool {
	end := fp.HighWatermark
	if ps.until >= 0 {
		end = ps.until
	}
	for _, r := range fp.Records {
		if ps.until >= 0 && r.Offset >= ps.until {
			if ps.marked || ps.until == 0 {
				continue
			}
			ps.marked = true
			if !gen.lanes.push(g.ctx, decoded{row: store.EventRow{Partition: r.Partition, Offset: r.Offset}, skipTo: ps.until}, ps.until) {
				return false
			}
			continue
		}
		d := decoded{row: store.EventRow{Partition: r.Partition, Offset: r.Offset}}
		var err error
		// The client decodes each fetch into fresh buffers and never
		// writes them again: the event may share the record's bytes.
		if d.row.Event, err = schemas.DecodeEventShared(r.Value, now); err != nil {
			d.bad = &badMessage{err: err, raw: r.Value}
		}
		if len(r.Headers) > 0 {
			if sc := trace.SpanContextFromContext(kafka.ExtractContext(context.Background(), r.Headers)); sc.IsValid() {
				d.parent = &sc
			}
		}
		if !gen.lanes.push(g.ctx, d, end) { // blocks while the lanes are full: backpressure
			return false
		}
	}
	return true
}

// refreshHighWater polls the end offset of the partitions this consumer
// owns until ctx ends.
func (c *consumer) refreshHighWater(ctx context.Context, oc sarama.Client) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		owned := make([]int32, 0, len(c.parts))
		for p := range c.parts {
			owned = append(owned, p)
		}
		c.mu.Unlock()
		for _, p := range owned {
			if hw, err := oc.GetOffset(c.in.Topic, p, sarama.OffsetNewest); err == nil {
				c.mu.Lock()
				if pp, ok := c.parts[p]; ok && hw > pp.HighWater {
					pp.HighWater = hw
				}
				c.mu.Unlock()
			}
		}
	}
}

func loadOffsetsRetrying(ctx context.Context, c *consumer) (map[int32]int64, error) {
	backoff := 200 * time.Millisecond
	for {
		stored, err := store.LoadOffsets(ctx, c.a.db, c.in.Pipeline, c.in.Topic)
		if err == nil {
			return stored, nil
		}
		c.setError(err)
		c.log.Warn("loading offsets failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// partWriter takes partition-disjoint batches from a generation's lanes
// and commits each in one MySQL transaction.
type partWriter struct {
	c      *consumer
	mark   func(part int32, next int64) // tells the consumer group
	cancel context.CancelCauseFunc
	lanes  *lanes
	rows   []*store.EventRow // reused across batches
}

func (w *partWriter) run(ctx context.Context) {
	var segs []seg
	for {
		var hs []held
		var ok bool
		segs, hs, ok = w.lanes.take(ctx, segs[:0])
		if d := w.lanes.takeStarved(); d > 0 {
			w.c.mu.Lock()
			w.c.prog.WriterWaitSeconds += d.Seconds()
			w.c.mu.Unlock()
		}
		if !ok {
			return // generation over: unwritten messages are re-read from stored offsets
		}
		ok = w.flush(ctx, segs, hs)
		w.lanes.done(hs, segs)
		if !ok {
			return // fenced or stopping: the generation is being torn down
		}
	}
}

// flush writes one batch of the lanes hs, retrying transient MySQL
// failures until it commits or ctx ends, and moves hs to the batch's end
// offsets. It reports false when the writer must stop.
func (w *partWriter) flush(ctx context.Context, segs []seg, hs []held) bool {
	c := w.c
	b := &store.Batch{Pipeline: c.in.Pipeline, Topic: c.in.Topic, Refs: w.rows[:0]}
	defer func() {
		clear(b.Refs) // let the lanes' chunks go until the next batch
		w.rows = b.Refs[:0]
	}()
	from := make(map[int32]int64, len(hs))
	for _, h := range hs {
		from[h.Part] = h.Pos
	}
	next := make(map[int32]int64, len(hs))
	var links []trace.Link
	messages := 0
	for _, sg := range segs {
		messages += sg.to - sg.from
	}
	b.Refs = slices.Grow(b.Refs, messages) // no doubling while the batch fills
	for _, sg := range segs {
		for i := sg.from; i < sg.to; i++ {
			w.add(b, &sg.c.d[i], from, next, &links)
		}
	}
	for _, h := range hs {
		if to, ok := next[h.Part]; ok {
			b.Offsets = append(b.Offsets, store.OffsetAdvance{Partition: h.Part, From: h.Pos, To: to})
		}
	}

	ctx, span := c.tracer.Start(ctx, "sluice.ingest.batch", trace.WithLinks(links...),
		trace.WithAttributes(attribute.String("sluice.pipeline", c.in.Pipeline), attribute.String("messaging.destination.name", c.in.Topic),
			attribute.Int("messaging.batch.message_count", messages)))
	defer span.End()

	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		res, err := c.writer.Write(ctx, b)
		if err == nil {
			lat := time.Since(start)
			for _, o := range b.Offsets {
				for i := range hs {
					if hs[i].Part == o.Partition {
						hs[i].Pos = o.To
					}
				}
				w.mark(o.Partition, o.To)
			}
			c.recordBatch(ctx, b, res, lat)
			span.SetAttributes(attribute.Int("sluice.inserted", res.Inserted), attribute.Int("sluice.duplicates", res.Duplicates), attribute.Int("sluice.dead_letters", res.DeadLetters))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, store.ErrFenced) {
			span.RecordError(err)
			w.cancel(errFenced)
			return false
		}
		if w.lanes.isClosed() {
			return false // generation over: the next one reads the batch again
		}
		c.setError(err)
		c.log.Warn("writing batch failed; retrying (not fetching more meanwhile)", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// add puts one queued message into b: an event row, a dead letter, or
// (skipTo) a bounded replay's end, and moves its partition's next offset.
func (w *partWriter) add(b *store.Batch, d *decoded, from, next map[int32]int64, links *[]trace.Link) {
	p := d.row.Partition
	if d.skipTo > 0 {
		cur, ok := next[p]
		if !ok {
			cur = from[p]
		}
		if d.skipTo > cur {
			next[p] = d.skipTo
		}
		return
	}
	next[p] = d.row.Offset + 1
	if d.bad != nil {
		b.Dead = append(b.Dead, store.DeadLetter{Partition: p, Offset: d.row.Offset, Raw: d.bad.raw, Reason: d.bad.err.Error()})
	} else {
		b.Refs = append(b.Refs, &d.row)
	}
	if d.parent != nil && len(*links) < maxBatchLinks {
		*links = append(*links, trace.Link{SpanContext: *d.parent})
	}
}

func (c *consumer) recordBatch(ctx context.Context, b *store.Batch, res store.Result, lat time.Duration) {
	msgs := int64(b.EventCount() + len(b.Dead))
	c.m.messages.Add(ctx, msgs)
	c.m.inserted.Add(ctx, int64(res.Inserted))
	c.m.duplicates.Add(ctx, int64(res.Duplicates))
	c.m.dead.Add(ctx, int64(res.DeadLetters))
	c.m.batchLatency.Record(ctx, float64(lat.Microseconds())/1000)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prog.Messages += msgs
	c.prog.Inserted += int64(res.Inserted)
	c.prog.Duplicates += int64(res.Duplicates)
	c.prog.DeadLetters += int64(res.DeadLetters)
	c.prog.Batches++
	c.prog.LastBatchMillis = float64(lat.Microseconds()) / 1000
	c.prog.LastError = ""
	for _, o := range b.Offsets {
		pp := c.part(o.Partition)
		pp.NextOffset = o.To
	}
}

func (c *consumer) part(p int32) *PartitionProgress {
	pp, ok := c.parts[p]
	if !ok {
		pp = &PartitionProgress{Partition: p, NextOffset: -1, HighWater: -1}
		c.parts[p] = pp
	}
	return pp
}

func (c *consumer) setPosition(p int32, next, hw int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pp := c.part(p)
	pp.NextOffset = next
	if hw >= 0 {
		pp.HighWater = hw
	}
}

// setHighWater raises the partition's known end offset (the end-offset
// poller may already know a newer one than the fetches).
func (c *consumer) setHighWater(p int32, hw int64) {
	c.mu.Lock()
	if pp := c.part(p); hw > pp.HighWater {
		pp.HighWater = hw
	}
	c.mu.Unlock()
}

func (c *consumer) setError(err error) {
	c.mu.Lock()
	c.prog.LastError = err.Error()
	c.mu.Unlock()
}

// snapshot returns a copy of the progress with lag and rate filled in.
func (c *consumer) snapshot() ConsumeProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	out := c.prog
	out.Partitions = make([]PartitionProgress, 0, len(c.parts))
	out.Lag = 0
	for _, pp := range c.parts {
		p := *pp
		if p.HighWater >= 0 {
			p.Lag = p.HighWater - max(p.NextOffset, 0)
			out.Lag += p.Lag
		}
		if until, ok := c.in.UntilOffsets[p.Partition]; ok {
			p.UntilOffset = &until
			out.Remaining += max(until-max(p.NextOffset, 0), 0)
		}
		out.Partitions = append(out.Partitions, p)
	}
	out.UntilReached = c.reached.Load()
	sort.Slice(out.Partitions, func(i, j int) bool { return out.Partitions[i].Partition < out.Partitions[j].Partition })
	if dt := now.Sub(c.rateMark); dt >= 2*time.Second {
		c.prog.EventsPerSec = float64(c.prog.Messages-c.rateMsgs) / dt.Seconds()
		c.rateMark, c.rateMsgs = now, c.prog.Messages
	}
	out.EventsPerSec = c.prog.EventsPerSec
	out.UpdatedAt = now.UTC()
	return out
}

// kgoLogger passes the consumer client's log to the activity's logger:
// warnings and errors, and at debug level its group joins, rebalances and
// connections.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		l.log.Error("kafka client: "+msg, keyvals...)
	case kgo.LogLevelWarn:
		l.log.Warn("kafka client: "+msg, keyvals...)
	default:
		l.log.Debug("kafka client: "+msg, keyvals...)
	}
}
