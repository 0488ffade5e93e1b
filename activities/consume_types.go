package activities

import (
	"fmt"
	"regexp"
	"time"
)

// ConsumeInput configures one run of the Consume activity.
type ConsumeInput struct {
	// Pipeline names the pipeline; it keys kafka_offsets and dead_letters.
	Pipeline string `json:"pipeline"`
	// Topic is the Kafka topic to consume.
	Topic string `json:"topic"`
	// Group is the Kafka consumer group (default "sluice-<pipeline>"). Its
	// committed offsets are informational: MySQL's kafka_offsets is the truth.
	Group string `json:"group,omitempty"`
	// BatchSize is the most messages one MySQL transaction carries (default
	// 50000, the most allowed). Bigger transactions fold more events into each
	// item_counts_minute row and amortise the offset fence and the commit;
	// under light load batches are as small as what has arrived. The lanes
	// hold up to Writers x BatchSize messages.
	BatchSize int `json:"batch_size,omitempty"`
	// FlushMillis is the longest a partial batch waits before it is written
	// (default 100; 200 left a pipeline at half its peak rate writing with
	// one writer, p99 freshness twice as long).
	FlushMillis int `json:"flush_ms,omitempty"`
	// Writers is the number of concurrent MySQL transactions (default 2). A
	// free writer takes a batch from partitions no other writer holds, so
	// each partition's batches commit in order and no writer idles while
	// another partition has a backlog. More writers help a MySQL server
	// with cores to spare; on the 2-core benchmark machine, where mysqld
	// shares the cores with the worker, 3 writers cost mysqld more CPU per
	// event than 2 (contention) in 5 paired runs of 5.
	Writers int `json:"writers,omitempty"`
	// StartFrom is where a partition with no stored offset starts: "oldest" (default) or "newest".
	StartFrom string `json:"start_from,omitempty"`
	// SessionSeconds makes the activity return cleanly after this long so the
	// workflow can record progress and continue-as-new (0 = run until cancelled).
	SessionSeconds int `json:"session_seconds,omitempty"`
	// ProgressSeconds is how often the activity signals its progress to its
	// workflow for the status query (0 = never).
	ProgressSeconds int `json:"progress_seconds,omitempty"`
	// Slot numbers the activity among its workflow's parallel consumers.
	Slot int `json:"slot,omitempty"`
	// UntilOffsets bounds a replay (BackfillWorkflow): each listed
	// partition is consumed up to, not including, its offset, a partition
	// not listed is not consumed, and the activity returns (UntilReached)
	// once kafka_offsets holds at least these offsets for every partition.
	// Unset: consume without end.
	UntilOffsets map[int32]int64 `json:"until_offsets,omitempty"`
}

// ProgressSignalName is the signal a consume activity sends its workflow.
const ProgressSignalName = "progress"

// ProgressSignal is the payload of the progress signal.
type ProgressSignal struct {
	Slot     int             `json:"slot"`
	Progress ConsumeProgress `json:"progress"`
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
var topicPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

// WithDefaults fills in unset fields.
func (in ConsumeInput) WithDefaults() ConsumeInput {
	if in.Group == "" {
		in.Group = "sluice-" + in.Pipeline
	}
	if in.BatchSize == 0 {
		in.BatchSize = 50000
	}
	if in.FlushMillis == 0 {
		in.FlushMillis = 100
	}
	if in.Writers == 0 {
		in.Writers = 2
	}
	if in.StartFrom == "" {
		in.StartFrom = "oldest"
	}
	return in
}

// Validate names the first field that is wrong.
func (in ConsumeInput) Validate() error {
	switch {
	case !namePattern.MatchString(in.Pipeline):
		return fmt.Errorf("pipeline: must be 1-64 characters of [A-Za-z0-9._-], got %q", in.Pipeline)
	case !topicPattern.MatchString(in.Topic):
		return fmt.Errorf("topic: must be 1-249 characters of [A-Za-z0-9._-], got %q", in.Topic)
	case in.Group == "":
		return fmt.Errorf("group: required")
	case in.BatchSize < 1 || in.BatchSize > 50000:
		return fmt.Errorf("batch_size: must be 1-50000, got %d", in.BatchSize)
	case in.FlushMillis < 1 || in.FlushMillis > 60000:
		return fmt.Errorf("flush_ms: must be 1-60000, got %d", in.FlushMillis)
	case in.Writers < 1 || in.Writers > 64:
		return fmt.Errorf("writers: must be 1-64, got %d", in.Writers)
	case in.StartFrom != "oldest" && in.StartFrom != "newest":
		return fmt.Errorf("start_from: must be \"oldest\" or \"newest\", got %q", in.StartFrom)
	case in.SessionSeconds < 0:
		return fmt.Errorf("session_seconds: must be >= 0, got %d", in.SessionSeconds)
	case in.ProgressSeconds < 0:
		return fmt.Errorf("progress_seconds: must be >= 0, got %d", in.ProgressSeconds)
	}
	return nil
}

// validateUntil checks UntilOffsets. It is apart from Validate, which
// workflow code calls: ranging over a map is not deterministic.
func (in ConsumeInput) validateUntil() error {
	bad := 0
	for p, o := range in.UntilOffsets {
		if p < 0 || o < 0 {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("until_offsets: partitions and offsets must be >= 0 (%d entries are not)", bad)
	}
	return nil
}

// UntilReached reports whether the stored next offsets reach in's
// UntilOffsets on every listed partition (a partition with no stored row
// has reached only an offset of 0).
func (in ConsumeInput) UntilReached(stored map[int32]int64) bool {
	for p, until := range in.UntilOffsets {
		if until == 0 {
			continue
		}
		if o, ok := stored[p]; !ok || o < until {
			return false
		}
	}
	return true
}

// PartitionProgress is the committed position and lag of one partition.
type PartitionProgress struct {
	Partition int32 `json:"partition"`
	// NextOffset is the next offset to consume, as committed in MySQL (-1: nothing committed yet).
	NextOffset int64 `json:"next_offset"`
	// HighWater is the partition's end offset as last seen by the consumer.
	HighWater int64 `json:"high_water"`
	// Lag is HighWater - NextOffset.
	Lag int64 `json:"lag"`
	// UntilOffset is where a bounded replay stops on this partition
	// (ConsumeInput.UntilOffsets; absent when unbounded).
	UntilOffset *int64 `json:"until_offset,omitempty"`
}

// ConsumeProgress is what the activity heartbeats (the Temporal UI shows it
// on the pending activity) and returns.
type ConsumeProgress struct {
	Pipeline    string              `json:"pipeline"`
	Topic       string              `json:"topic"`
	Slot        int                 `json:"slot"`
	Partitions  []PartitionProgress `json:"partitions"`
	Lag         int64               `json:"lag"`
	Messages    int64               `json:"messages"`
	Inserted    int64               `json:"inserted"`
	Duplicates  int64               `json:"duplicates"`
	DeadLetters int64               `json:"dead_letters"`
	Batches     int64               `json:"batches"`
	Fenced      int64               `json:"fenced"`
	// EventsPerSec is the message rate over the last few seconds.
	EventsPerSec float64 `json:"events_per_sec"`
	// LastBatchMillis is the latency of the last MySQL transaction.
	LastBatchMillis float64 `json:"last_batch_ms"`
	// WriterWaitSeconds is the time the writers spent waiting for messages
	// while Kafka held more of their partitions than had been read. With a
	// backlog MySQL should be what limits the pipeline; time here means
	// reading from Kafka kept the writers waiting.
	WriterWaitSeconds float64 `json:"writer_wait_s"`
	// LastError is the most recent write or fetch error, if any.
	LastError string    `json:"last_error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	// Remaining is, for a bounded replay, the messages left below the
	// UntilOffsets of the partitions this activity owns.
	Remaining int64 `json:"remaining,omitempty"`
	// UntilReached says a bounded replay is complete: every partition is
	// committed up to its UntilOffsets.
	UntilReached bool `json:"until_reached,omitempty"`
}
