package kafka

import (
	"context"
	"slices"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// ProducerHeaderCarrier adapts the headers of a record being produced to
// propagation.TextMapCarrier. Set replaces an existing header of the same
// key.
type ProducerHeaderCarrier struct {
	Headers *[]sarama.RecordHeader
}

var _ propagation.TextMapCarrier = ProducerHeaderCarrier{}

// Get returns the value of the first header named key, or "".
func (c ProducerHeaderCarrier) Get(key string) string {
	for _, h := range *c.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set stores value under key, replacing any header already named key.
func (c ProducerHeaderCarrier) Set(key, value string) {
	hs := *c.Headers
	for i := range hs {
		if string(hs[i].Key) == key {
			hs[i].Value = []byte(value)
			return
		}
	}
	*c.Headers = append(hs, sarama.RecordHeader{Key: []byte(key), Value: []byte(value)})
}

// Keys lists the header names.
func (c ProducerHeaderCarrier) Keys() []string {
	keys := make([]string, len(*c.Headers))
	for i, h := range *c.Headers {
		keys[i] = string(h.Key)
	}
	return keys
}

// ConsumerHeaderCarrier adapts the headers of a consumed record to
// propagation.TextMapCarrier.
type ConsumerHeaderCarrier []kgo.RecordHeader

var _ propagation.TextMapCarrier = (*ConsumerHeaderCarrier)(nil)

// Get returns the value of the first header named key, or "".
func (c *ConsumerHeaderCarrier) Get(key string) string {
	for _, h := range *c {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set stores value under key, replacing any header already named key.
func (c *ConsumerHeaderCarrier) Set(key, value string) {
	for i := range *c {
		if (*c)[i].Key == key {
			(*c)[i].Value = []byte(value)
			return
		}
	}
	*c = append(*c, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// Keys lists the header names.
func (c *ConsumerHeaderCarrier) Keys() []string {
	keys := make([]string, len(*c))
	for i, h := range *c {
		keys[i] = h.Key
	}
	return keys
}

// InjectHeaders writes the trace context of ctx (W3C traceparent and
// tracestate, plus baggage when configured) into h with the global
// propagator and returns the updated headers. h itself is not modified.
func InjectHeaders(ctx context.Context, h []sarama.RecordHeader) []sarama.RecordHeader {
	h = slices.Clip(slices.Clone(h))
	otel.GetTextMapPropagator().Inject(ctx, ProducerHeaderCarrier{Headers: &h})
	return h
}

// ExtractContext returns ctx extended with the trace context found in the
// headers of a consumed record, using the global propagator.
func ExtractContext(ctx context.Context, h []kgo.RecordHeader) context.Context {
	c := ConsumerHeaderCarrier(h)
	return otel.GetTextMapPropagator().Extract(ctx, &c)
}
