package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/schemas"
)

// ReplayInput selects the dead letters to re-ingest.
type ReplayInput struct {
	Pipeline string `json:"pipeline"`
	Topic    string `json:"topic"`
	// From and To bound the day the letters were parked (YYYY-MM-DD, inclusive).
	From string `json:"from"`
	To   string `json:"to"`
	// Partition and Offsets pick individual messages.
	Partition *int32  `json:"partition,omitempty"`
	Offsets   []int64 `json:"offsets,omitempty"`
	// ReasonContains keeps letters whose reason contains this text.
	ReasonContains string `json:"reason_contains,omitempty"`
	// ChunkSize is the letters per transaction (default 500).
	ChunkSize int `json:"chunk_size,omitempty"`
}

// Validate names the first wrong field.
func (in ReplayInput) Validate() error {
	switch {
	case !namePattern.MatchString(in.Pipeline):
		return fmt.Errorf("pipeline: must be 1-64 characters of [A-Za-z0-9._-], got %q", in.Pipeline)
	case !topicPattern.MatchString(in.Topic):
		return fmt.Errorf("topic: must be 1-249 characters of [A-Za-z0-9._-], got %q", in.Topic)
	case len(in.Offsets) > 0 && in.Partition == nil:
		return fmt.Errorf("offsets: need partition")
	case in.ChunkSize < 0 || in.ChunkSize > 5000:
		return fmt.Errorf("chunk_size: must be 0-5000, got %d", in.ChunkSize)
	}
	if _, err := time.Parse("2006-01-02", in.From); err != nil {
		return fmt.Errorf("from: must be a date YYYY-MM-DD, got %q", in.From)
	}
	if _, err := time.Parse("2006-01-02", in.To); err != nil {
		return fmt.Errorf("to: must be a date YYYY-MM-DD, got %q", in.To)
	}
	if in.From > in.To {
		return fmt.Errorf("from: %s is after to %s", in.From, in.To)
	}
	return nil
}

// ReplayProgress is heartbeated after every chunk and returned at the end.
type ReplayProgress struct {
	store.ReplayResult
	Cursor store.ReplayCursor `json:"cursor"`
	Done   bool               `json:"done"`
}

// ReplayDeadLetters re-ingests the selected dead letters with the current
// decoder, a chunk per transaction, each letter exactly once (see
// store.Writer.ReplayChunk). It heartbeats its cursor and resumes from it
// when retried.
func (a *Activities) ReplayDeadLetters(ctx context.Context, in ReplayInput) (ReplayProgress, error) {
	if err := in.Validate(); err != nil {
		return ReplayProgress{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", err)
	}
	from, _ := time.Parse("2006-01-02", in.From)
	to, _ := time.Parse("2006-01-02", in.To)
	chunk := in.ChunkSize
	if chunk == 0 {
		chunk = 500
	}
	sel := store.ReplaySelection{Pipeline: in.Pipeline, Topic: in.Topic, FromDate: from, ToDate: to,
		Partition: in.Partition, Offsets: in.Offsets, ReasonContains: in.ReasonContains}
	var prog ReplayProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &prog)
	}
	w := &store.Writer{DB: a.db}
	decode := func(raw []byte) (schemas.Event, error) { return schemas.DecodeEvent(raw, time.Now()) }
	for !prog.Done {
		res, next, done, err := w.ReplayChunk(ctx, sel, prog.Cursor, chunk, decode)
		if err != nil {
			return prog, err
		}
		prog.Add(res)
		prog.Cursor, prog.Done = next, done
		activity.RecordHeartbeat(ctx, prog)
		if ctx.Err() != nil {
			return prog, ctx.Err()
		}
	}
	a.logger.Info("dead letter replay finished", "pipeline", in.Pipeline, "topic", in.Topic,
		"scanned", prog.Scanned, "ingested", prog.Ingested, "duplicates", prog.Duplicates, "still_invalid", prog.StillInvalid)
	return prog, nil
}
