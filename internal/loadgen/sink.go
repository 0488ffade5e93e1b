package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// HTTPSink posts batches as NDJSON to the collector, e.g.
// http://127.0.0.1:8080/v1/events. A 503 or 429 answer is retried after
// its Retry-After (default 1s) for as long as ctx allows.
type HTTPSink struct {
	URL    string
	Token  string       // sent as "Authorization: Bearer <Token>" when set
	Client *http.Client // nil means http.DefaultClient
}

// collectorAnswer is the collector's JSON reply to a batch.
type collectorAnswer struct {
	Accepted int `json:"accepted"`
	Rejected []struct {
		Index  int    `json:"index"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}

const (
	maxAnswerBytes    = 1 << 20
	defaultRetryAfter = time.Second
)

// Send posts items, one NDJSON line each, and returns the collector's counts.
func (s *HTTPSink) Send(ctx context.Context, items []Item) (accepted, rejected int, err error) {
	var body bytes.Buffer
	for i, it := range items {
		if bytes.IndexByte(it.Payload, '\n') >= 0 {
			return 0, 0, fmt.Errorf("encoding item %d: payload contains a newline", i)
		}
		body.Write(it.Payload)
		body.WriteByte('\n')
	}
	for {
		answer, retryAfter, err := s.post(ctx, body.Bytes())
		if err != nil {
			return 0, 0, err
		}
		if retryAfter < 0 {
			return answer.Accepted, len(answer.Rejected), nil
		}
		t := time.NewTimer(retryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, 0, fmt.Errorf("waiting to retry: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// post makes one attempt. It returns retryAfter >= 0 when the collector
// asked to come back later.
func (s *HTTPSink) post(ctx context.Context, body []byte) (answer collectorAnswer, retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return answer, 0, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer, 0, fmt.Errorf("posting events: %w", err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return answer, 0, fmt.Errorf("reading collector reply: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
		return answer, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return answer, 0, fmt.Errorf("posting events: collector answered %s: %s", resp.Status, bytes.TrimSpace(reply))
	}
	if err := json.Unmarshal(reply, &answer); err != nil {
		return answer, 0, fmt.Errorf("decoding collector reply %q: %w", reply, err)
	}
	return answer, -1, nil
}

// parseRetryAfter reads delay-seconds or an HTTP date; missing or
// malformed values give defaultRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if secs, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(secs)*time.Second, 0)
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0)
	}
	return defaultRetryAfter
}

// KafkaSink produces each item to Topic with its Key, bypassing the
// collector.
type KafkaSink struct {
	Producer sarama.SyncProducer
	Topic    string
}

// Send produces items in one SendMessages call; accepted is the number of
// messages delivered and rejected is always 0.
func (s *KafkaSink) Send(ctx context.Context, items []Item) (accepted, rejected int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	msgs := make([]*sarama.ProducerMessage, len(items))
	for i, it := range items {
		msgs[i] = &sarama.ProducerMessage{Topic: s.Topic, Key: sarama.StringEncoder(it.Key), Value: sarama.ByteEncoder(it.Payload)}
	}
	if err := s.Producer.SendMessages(msgs); err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) {
			return len(items) - len(perrs), 0, fmt.Errorf("producing to %s: %w", s.Topic, err)
		}
		return 0, 0, fmt.Errorf("producing to %s: %w", s.Topic, err)
	}
	return len(items), 0, nil
}
