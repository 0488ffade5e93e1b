package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
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

// errFenced is the cause given to a consumer session that lost an offset race.
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

func (c *consumer) saramaConfig() (*sarama.Config, error) {
	sc, err := c.a.kafka.Sarama()
	if err != nil {
		return nil, err
	}
	if c.in.StartFrom == "newest" {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	} else {
		sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	}
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	// Per partition and fetch: sarama holds a fetch's decompressed records
	// until all are delivered, so this bounds memory as much as the lanes.
	// At 512 KiB sarama's parsed messages and their buffers were a third of
	// the worker's live heap in (b) of the benchmark (81 MB, heap profile);
	// at 128 KiB the live heap was 54 MB and the peak RSS 157 MB instead of
	// 208-234, for the same fetch CPU (sarama's Fetch 13-14 % of the
	// worker's CPU either way).
	sc.Consumer.Fetch.Default = 128 << 10
	sc.Consumer.Return.Errors = false
	// A dead member (worker killed) holds its partitions until this expires.
	sc.Consumer.Group.Session.Timeout = 6 * time.Second
	// A member learns of a rebalance (another worker joined, say) from a
	// heartbeat's reply, so with sarama's 3 s interval the partitions meant
	// for the new member would sit idle for up to 3 s.
	sc.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	// A join or sync refused with "rebalance in progress" (two workers
	// joining at once) is retried after this; sarama's 2 s left the whole
	// group idle that long. 10 tries, then the session loop's own retry.
	sc.Consumer.Group.Rebalance.Retry.Backoff = 250 * time.Millisecond
	sc.Consumer.Group.Rebalance.Retry.Max = 10
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	// The broker may hold a JoinGroup until every member rejoined, for up
	// to the rebalance timeout; if that exceeds the client's read timeout
	// (sarama's default 60 s against our 10 s) the join times out, the
	// next attempt is a new member the broker waits for too, and the group
	// never forms (seen with two worker processes starting together). Our
	// members leave a session within a second or two.
	sc.Consumer.Group.Rebalance.Timeout = max(sc.Net.ReadTimeout-2*time.Second, time.Second)
	sc.ChannelBufferSize = 256
	return sc, nil
}

// run consumes until ctx is done. A fenced session (another attempt moved a
// partition's offset) is torn down and rebuilt from kafka_offsets.
func (c *consumer) run(ctx context.Context) error {
	sc, err := c.saramaConfig()
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidConfig", err)
	}
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
	if oc, err := sarama.NewClient(c.a.kafka.Brokers, sc); err == nil {
		defer oc.Close()
		go c.refreshHighWater(ctx, oc)
	} else {
		c.log.Warn("no client for end offsets; lag comes from fetches only", "err", err)
	}
	for ctx.Err() == nil {
		group, err := sarama.NewConsumerGroup(c.a.kafka.Brokers, c.in.Group, sc)
		if err != nil {
			c.setError(err)
			return fmt.Errorf("joining consumer group %s: %w", c.in.Group, err)
		}
		sessCtx, cancel := context.WithCancelCause(ctx)
		h := &handler{c: c, cancel: cancel, group: group}
		for sessCtx.Err() == nil {
			if err := group.Consume(sessCtx, []string{c.in.Topic}, h); err != nil && sessCtx.Err() == nil {
				c.setError(err)
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					break
				}
				c.log.Warn("consumer group session ended", "err", err)
				select {
				case <-sessCtx.Done():
				case <-time.After(time.Second):
				}
			}
		}
		cause := context.Cause(sessCtx)
		cancel(nil)
		if err := group.Close(); err != nil {
			c.log.Warn("closing consumer group", "err", err)
		}
		if errors.Is(cause, errFenced) {
			c.mu.Lock()
			c.prog.Fenced++
			c.mu.Unlock()
			c.log.Warn("offset fenced by another attempt; reloading positions from kafka_offsets")
			continue
		}
		if cause != nil && ctx.Err() == nil {
			return cause
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

// handler is the sarama ConsumerGroupHandler of one consumer group client.
type handler struct {
	c      *consumer
	cancel context.CancelCauseFunc
	group  sarama.ConsumerGroup

	lanes *lanes
	wg    sync.WaitGroup
}

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	c := h.c
	ctx := sess.Context()
	stored, err := loadOffsetsRetrying(ctx, c)
	if err != nil {
		return err
	}
	claimed := sess.Claims()[c.in.Topic]
	c.mu.Lock()
	c.parts = map[int32]*PartitionProgress{} // only what this session owns
	c.mu.Unlock()
	positions := make(map[int32]int64, len(claimed))
	for _, p := range claimed {
		pos, ok := stored[p]
		if ok {
			// Move the group's position to MySQL's, whichever way it lies.
			sess.MarkOffset(c.in.Topic, p, pos, "")
			sess.ResetOffset(c.in.Topic, p, pos, "")
		} else {
			pos = -1
		}
		positions[p] = pos
		c.setPosition(p, pos, -1)
	}
	h.lanes = newLanes(c.in.BatchSize, time.Duration(c.in.FlushMillis)*time.Millisecond, c.in.Writers, positions)
	if h.group != nil {
		// The group keeps partitions paused across sessions; the new
		// lanes start empty.
		h.group.ResumeAll()
		topic := c.in.Topic
		h.lanes.pause = func(p int32, paused bool) {
			if paused {
				h.group.Pause(map[string][]int32{topic: {p}})
			} else {
				h.group.Resume(map[string][]int32{topic: {p}})
			}
		}
		// A fetch of Fetch.Default (128 KiB) holds ~4,900 of the
		// benchmark's events (27 bytes each with lz4).
		h.lanes.slack = 8192
	}
	for range c.in.Writers {
		w := &partWriter{c: c, sess: sess, cancel: h.cancel, lanes: h.lanes}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			w.run(ctx)
		}()
	}
	c.log.Info("consumer session started", "partitions", claimed, "stored_offsets", stored)
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error {
	// sarama calls Cleanup after a failed Setup too (the session was
	// revoked while Setup read the stored offsets): no lanes, no writers.
	if h.lanes == nil {
		return nil
	}
	// Queued messages that were not written are re-read from the stored
	// offsets by the next session.
	h.lanes.close()
	h.wg.Wait()
	h.lanes = nil
	return nil
}

func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	c := h.c
	ctx := sess.Context()
	var hw int64 = -1
	// A bounded replay consumes a listed partition below its until offset
	// and nothing of an unlisted one.
	until, bounded := int64(-1), c.in.UntilOffsets != nil
	if bounded {
		until = c.in.UntilOffsets[claim.Partition()]
	}
	marked := false
	// The clock for the decoder's "not too far in the future" check (24 h
	// of slack) is read once per 256 messages.
	var now time.Time
	msgs := claim.Messages()
	for n := 0; ; n++ {
		if n%256 == 0 {
			if ctx.Err() != nil {
				return nil
			}
			now = time.Now()
		}
		// A backlog is read without a two-way select per message (a tenth
		// of the loop's CPU went to selectgo); ctx is checked every 256
		// messages then, and whenever the claim has nothing to give.
		var msg *sarama.ConsumerMessage
		var ok bool
		select {
		case msg, ok = <-msgs:
		default:
			select {
			case <-ctx.Done():
				return nil
			case msg, ok = <-msgs:
			}
			// The claim was empty, maybe for hours: the clock read 256
			// messages ago would misjudge "too far in the future".
			now = time.Now()
		}
		if !ok {
			return nil
		}
		if bounded && msg.Offset >= until {
			if hwm := claim.HighWaterMarkOffset(); hwm != hw {
				hw = hwm
				c.setHighWater(claim.Partition(), hwm)
			}
			if marked || until == 0 {
				continue
			}
			marked = true
			if !h.lanes.push(ctx, decoded{row: store.EventRow{Partition: msg.Partition, Offset: msg.Offset}, skipTo: until}, until) {
				return nil
			}
			continue
		}
		d := decoded{row: store.EventRow{Partition: msg.Partition, Offset: msg.Offset}}
		var err error
		// sarama gives each fetch fresh buffers and never writes them
		// again: the event may share the record's bytes.
		if d.row.Event, err = schemas.DecodeEventShared(msg.Value, now); err != nil {
			d.bad = &badMessage{err: err, raw: msg.Value}
		}
		if len(msg.Headers) > 0 {
			if sc := trace.SpanContextFromContext(kafka.ExtractContext(context.Background(), msg.Headers)); sc.IsValid() {
				d.parent = &sc
			}
		}
		if hwm := claim.HighWaterMarkOffset(); hwm != hw {
			hw = hwm
			c.setHighWater(claim.Partition(), hwm)
		}
		end := hw
		if bounded {
			end = until
		}
		if !h.lanes.push(ctx, d, end) { // blocks while the lanes are full: backpressure
			return nil
		}
	}
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

// partWriter takes partition-disjoint batches from the session's lanes
// and commits each in one MySQL transaction.
type partWriter struct {
	c      *consumer
	sess   sarama.ConsumerGroupSession
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
			return // session over: unwritten messages are re-read from stored offsets
		}
		ok = w.flush(ctx, segs, hs)
		w.lanes.done(hs, segs)
		if !ok {
			return // fenced or stopping: the session is being torn down
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
				w.sess.MarkOffset(c.in.Topic, o.Partition, o.To, "")
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
