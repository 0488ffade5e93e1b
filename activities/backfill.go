package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/internal/store"
)

// RebuildDayInput names the UTC day BackfillRebuildDay rebuilds.
type RebuildDayInput struct {
	Day string `json:"day"` // YYYY-MM-DD
}

// BackfillRebuildDay makes one UTC day of item_counts_minute equal to the
// recomputation from events with the stream's own aggregation, while the
// stream may keep writing to that day (see store.RebuildDay for why that is
// safe). It heartbeats {day, phase, rows_scanned, buckets_written} every
// second; a retried attempt simply starts over (a finished one left nothing
// to correct).
func (a *Activities) BackfillRebuildDay(ctx context.Context, in RebuildDayInput) (store.RebuildResult, error) {
	day, err := time.Parse(time.DateOnly, in.Day)
	if err != nil {
		err = fmt.Errorf("day: want YYYY-MM-DD, got %q", in.Day)
		return store.RebuildResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", err)
	}
	var (
		mu   sync.Mutex
		last = store.RebuildProgress{Day: in.Day, Phase: "waiting"}
	)
	done := make(chan struct{})
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mu.Lock()
				p := last
				mu.Unlock()
				activity.RecordHeartbeat(ctx, p)
			}
		}
	}()
	res, err := store.RebuildDay(ctx, a.db, day, store.RebuildOptions{Progress: func(p store.RebuildProgress) {
		mu.Lock()
		last = p
		mu.Unlock()
	}})
	close(done)
	<-hbDone
	if err != nil {
		return res, err
	}
	activity.RecordHeartbeat(ctx, store.RebuildProgress{Day: in.Day, Phase: "done", RowsScanned: res.RowsScanned, BucketsWritten: res.BucketsWritten})
	if res.Drifted > 0 {
		a.logger.Info("rebuilt day", "day", in.Day, "rows", res.RowsScanned, "buckets", res.Buckets, "drifted", res.Drifted, "deleted", res.Deleted)
	}
	return res, nil
}

// PrepareReplayInput is BackfillPrepareReplay's input.
type PrepareReplayInput struct {
	Pipeline string `json:"pipeline"`
	Topic    string `json:"topic"`
	FromTime string `json:"from_time"` // RFC 3339
	// Force overwrites offsets the pipeline already has for the topic.
	Force bool `json:"force,omitempty"`
}

// ReplayRange is one partition of a replay: [Start, Stop).
type ReplayRange struct {
	Partition int32 `json:"partition"`
	Start     int64 `json:"start"`
	Stop      int64 `json:"stop"`
	// Previous is the offset force replaced (absent when there was none).
	Previous *int64 `json:"previous,omitempty"`
}

// PrepareReplayResult is where a replay starts and stops.
type PrepareReplayResult struct {
	Partitions []ReplayRange `json:"partitions"`
	// Messages is the sum of Stop - Start.
	Messages int64    `json:"messages"`
	Warnings []string `json:"warnings,omitempty"`
}

// UntilOffsets is the stop condition for the Consume activity.
func (r PrepareReplayResult) UntilOffsets() map[int32]int64 {
	out := make(map[int32]int64, len(r.Partitions))
	for _, p := range r.Partitions {
		out[p.Partition] = p.Stop
	}
	return out
}

// ErrTypeOffsetsExist is the error type of a replay refused because the
// pipeline already has offsets.
const ErrTypeOffsetsExist = "OffsetsExist"

// BackfillPrepareReplay starts a new pipeline at a point in time: it
// resolves each partition's first offset at or after from_time (the end
// offset where no message is that new), stores those as the pipeline's
// positions in kafka_offsets (refusing, unless force, when the pipeline
// already has positions for the topic), and then snapshots the end offsets
// the replay stops at. Retrying it is safe: the same time resolves to the
// same offsets, which are then already stored.
func (a *Activities) BackfillPrepareReplay(ctx context.Context, in PrepareReplayInput) (PrepareReplayResult, error) {
	var out PrepareReplayResult
	invalid := func(err error) error {
		return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", err)
	}
	if !namePattern.MatchString(in.Pipeline) {
		return out, invalid(fmt.Errorf("pipeline: must be 1-64 characters of [A-Za-z0-9._-], got %q", in.Pipeline))
	}
	if !topicPattern.MatchString(in.Topic) {
		return out, invalid(fmt.Errorf("topic: must be 1-249 characters of [A-Za-z0-9._-], got %q", in.Topic))
	}
	from, err := time.Parse(time.RFC3339, in.FromTime)
	if err != nil {
		return out, invalid(fmt.Errorf("from_time: want an RFC 3339 time, got %q", in.FromTime))
	}
	resolved, err := kafka.OffsetsForTime(ctx, a.kafka, in.Topic, from)
	if err != nil {
		return out, err
	}
	if len(resolved) == 0 {
		return out, invalid(fmt.Errorf("topic: %s has no partitions", in.Topic))
	}
	start := make(map[int32]int64, len(resolved))
	for _, r := range resolved {
		start[r.Partition] = r.Offset
		if r.Found && r.Offset == r.Oldest && r.Oldest > 0 {
			out.Warnings = append(out.Warnings, fmt.Sprintf("partition %d: from_time resolves to the oldest retained offset %d: older messages were deleted by retention, so messages from from_time may be missing", r.Partition, r.Oldest))
		}
	}
	previous, err := store.SeedOffsets(ctx, a.db, in.Pipeline, in.Topic, start, in.Force)
	if errors.Is(err, store.ErrOffsetsExist) {
		err = fmt.Errorf("pipeline: kafka_offsets already holds offsets of pipeline %q for topic %q (%v); a kafka backfill starts a new pipeline: pick a new pipeline name, or set \"force\": true to replace them (stop that pipeline's stream first)", in.Pipeline, in.Topic, previous)
		return out, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeOffsetsExist, err)
	}
	if err != nil {
		return out, err
	}
	// The end offsets after the start offsets are stored: never below them.
	end, err := kafka.EndOffsets(ctx, a.kafka, in.Topic)
	if err != nil {
		return out, err
	}
	for _, r := range resolved {
		rr := ReplayRange{Partition: r.Partition, Start: r.Offset, Stop: max(end[r.Partition], r.Offset)}
		if in.Force {
			if p, ok := previous[r.Partition]; ok {
				rr.Previous = &p
			}
		}
		out.Partitions = append(out.Partitions, rr)
		out.Messages += rr.Stop - rr.Start
	}
	a.logger.Info("replay prepared", "pipeline", in.Pipeline, "topic", in.Topic, "from_time", in.FromTime, "messages", out.Messages, "forced", in.Force && len(previous) > 0)
	return out, nil
}
