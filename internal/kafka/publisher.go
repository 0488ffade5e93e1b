package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ErrUnavailable reports that Kafka could not durably accept records right
// now: brokers unreachable, no leader, not enough in-sync replicas, or a
// request timeout. The operation may be retried later.
var ErrUnavailable = errors.New("kafka unavailable")

// readyCacheTTL is how long the result of a readiness check is reused.
const readyCacheTTL = time.Second

const tracerName = "github.com/sluicedata/sluice/internal/kafka"

// Message is one record to publish.
type Message struct {
	// Key selects the partition: equal keys always land on the same
	// partition. A nil key picks a random partition.
	Key []byte
	// Value is the record payload.
	Value []byte
	// Headers are attached to the record as is.
	Headers []sarama.RecordHeader
}

// Publisher writes records to one topic and returns only once every record
// has been acknowledged by all in-sync replicas.
type Publisher struct {
	topic    string
	client   sarama.Client
	producer sarama.SyncProducer
	tracer   trace.Tracer

	// closeMu is held for reading while sending and for writing by Close,
	// so that Close waits for sends in flight and no send starts after it.
	closeMu sync.RWMutex
	closed  bool

	readyMu   sync.Mutex
	readyAt   time.Time
	readyErr  error
	readyWait chan struct{} // non-nil while a check runs; closed when done
}

// NewPublisher connects to the cluster in cfg and returns a Publisher for
// topic. The producer is idempotent, waits for all in-sync replicas, routes
// keys with the murmur2 hash of the Java client and compresses with lz4.
func NewPublisher(cfg Config, topic string) (*Publisher, error) {
	if topic == "" {
		return nil, errors.New("creating kafka publisher: empty topic")
	}
	sc, err := cfg.Sarama()
	if err != nil {
		return nil, fmt.Errorf("creating kafka publisher: %w", err)
	}
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1 // required by the idempotent producer
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Timeout = produceTimeout
	sc.Producer.Retry.Max = produceRetries
	sc.Producer.Retry.Backoff = produceBackoff
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	sc.Producer.Compression = sarama.CompressionLZ4
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("validating producer config: %w", err)
	}

	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("connecting to kafka %v: %w", cfg.Brokers, classify(err))
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("creating kafka producer: %w", classify(err))
	}
	return &Publisher{
		topic:    topic,
		client:   client,
		producer: producer,
		tracer:   otel.Tracer(tracerName),
	}, nil
}

// Topic returns the topic p writes to.
func (p *Publisher) Topic() string { return p.topic }

// Publish sends msgs and waits until all of them are acknowledged by every
// in-sync replica. It is all or nothing from the caller's point of view: on
// error some records may nevertheless have been written, so consumers must
// deduplicate. An error caused by the cluster being unreachable or unable to
// replicate wraps ErrUnavailable. If ctx ends first Publish returns its error
// while the records already handed to the producer finish in the background.
func (p *Publisher) Publish(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publishing to %s: %w", p.topic, err)
	}
	ctx, span := p.tracer.Start(ctx, "publish "+p.topic,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", p.topic),
			attribute.Int("messaging.batch.message_count", len(msgs)),
		))
	defer span.End()

	pms := make([]*sarama.ProducerMessage, len(msgs))
	for i, m := range msgs {
		pm := &sarama.ProducerMessage{
			Topic:   p.topic,
			Value:   sarama.ByteEncoder(m.Value),
			Headers: m.Headers,
		}
		if m.Key != nil {
			pm.Key = sarama.ByteEncoder(m.Key)
		}
		pms[i] = pm
	}

	done := make(chan error, 1)
	go func() { done <- p.send(pms) }()

	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		err = fmt.Errorf("publishing %d messages to %s: %w", len(msgs), p.topic, err)
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
	}
	return err
}

// send hands pms to the producer unless p is closed and classifies the
// outcome.
func (p *Publisher) send(pms []*sarama.ProducerMessage) error {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		return fmt.Errorf("%w: publisher closed", ErrUnavailable)
	}
	err := p.producer.SendMessages(pms)
	if err == nil {
		return nil
	}
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) && len(perrs) > 0 {
		// Report the first failure; they nearly always share one cause.
		return fmt.Errorf("%d of %d failed, first: %w", len(perrs), len(pms), classify(perrs[0].Err))
	}
	return classify(err)
}

// Ready reports whether the brokers answer metadata for the topic and every
// partition has a leader. The outcome is cached for about a second so that
// frequent readiness probes stay cheap; concurrent callers share one check.
func (p *Publisher) Ready(ctx context.Context) error {
	p.readyMu.Lock()
	if p.readyWait == nil && !p.readyAt.IsZero() && time.Since(p.readyAt) < readyCacheTTL {
		err := p.readyErr
		p.readyMu.Unlock()
		return err
	}
	wait := p.readyWait
	if wait == nil {
		wait = make(chan struct{})
		p.readyWait = wait
		go p.checkReady(wait)
	}
	p.readyMu.Unlock()

	select {
	case <-wait:
		p.readyMu.Lock()
		defer p.readyMu.Unlock()
		return p.readyErr
	case <-ctx.Done():
		return fmt.Errorf("checking kafka readiness: %w", ctx.Err())
	}
}

// checkReady refreshes the topic metadata, stores the outcome and closes
// wait.
func (p *Publisher) checkReady(wait chan struct{}) {
	err := p.topicWritable()
	p.readyMu.Lock()
	p.readyAt = time.Now()
	p.readyErr = err
	p.readyWait = nil
	p.readyMu.Unlock()
	close(wait)
}

// topicWritable asks the cluster for fresh metadata of the topic.
func (p *Publisher) topicWritable() error {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		return fmt.Errorf("checking kafka readiness: %w: publisher closed", ErrUnavailable)
	}
	if err := p.client.RefreshMetadata(p.topic); err != nil {
		return fmt.Errorf("refreshing metadata for %s: %w", p.topic, classify(err))
	}
	all, err := p.client.Partitions(p.topic)
	if err != nil {
		return fmt.Errorf("listing partitions of %s: %w", p.topic, classify(err))
	}
	writable, err := p.client.WritablePartitions(p.topic)
	if err != nil {
		return fmt.Errorf("listing writable partitions of %s: %w", p.topic, classify(err))
	}
	if len(all) == 0 || len(writable) < len(all) {
		return fmt.Errorf("checking partitions of %s: %w: %d of %d partitions have a leader",
			p.topic, ErrUnavailable, len(writable), len(all))
	}
	return nil
}

// Close waits for sends in flight, then shuts the producer and its client
// down. Further calls to Publish fail with ErrUnavailable. Close is safe to
// call more than once.
func (p *Publisher) Close() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if err := p.producer.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing kafka producer: %w", err))
	}
	if err := p.client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		errs = append(errs, fmt.Errorf("closing kafka client: %w", err))
	}
	return errors.Join(errs...)
}

// classify wraps err with ErrUnavailable unless it is a permanent error that
// retrying cannot fix, such as an oversized record or an authorization
// failure.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || isPermanent(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// isPermanent reports whether err will recur however often the request is
// retried.
func isPermanent(err error) bool {
	var cerr sarama.ConfigurationError
	if errors.As(err, &cerr) {
		return true
	}
	var kerr sarama.KError
	if !errors.As(err, &kerr) {
		return false
	}
	switch kerr {
	case sarama.ErrInvalidMessage,
		sarama.ErrMessageSizeTooLarge,
		sarama.ErrInvalidTopic,
		sarama.ErrMessageSetSizeTooLarge,
		sarama.ErrInvalidRequiredAcks,
		sarama.ErrTopicAuthorizationFailed,
		sarama.ErrClusterAuthorizationFailed,
		sarama.ErrUnsupportedVersion,
		sarama.ErrUnsupportedForMessageFormat,
		sarama.ErrInvalidRecord,
		sarama.ErrUnsupportedCompressionType,
		sarama.ErrSASLAuthenticationFailed:
		return true
	}
	return false
}
