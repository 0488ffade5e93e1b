package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// EnsureTopic creates topic with the given partition count and replication
// factor if it does not exist yet. An existing topic is left untouched, even
// if its settings differ.
func EnsureTopic(ctx context.Context, cfg Config, topic string, partitions int32, replication int16) error {
	switch {
	case topic == "":
		return errors.New("ensuring topic: empty topic name")
	case partitions < 1:
		return fmt.Errorf("ensuring topic %s: partitions must be positive, got %d", topic, partitions)
	case replication < 1:
		return fmt.Errorf("ensuring topic %s: replication must be positive, got %d", topic, replication)
	}
	sc, err := cfg.Sarama()
	if err != nil {
		return fmt.Errorf("ensuring topic %s: %w", topic, err)
	}
	return runCtx(ctx, func() error {
		admin, err := sarama.NewClusterAdmin(cfg.Brokers, sc)
		if err != nil {
			return fmt.Errorf("connecting kafka admin: %w", classify(err))
		}
		defer func() { _ = admin.Close() }()
		err = admin.CreateTopic(topic, &sarama.TopicDetail{
			NumPartitions:     partitions,
			ReplicationFactor: replication,
		}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", topic, classify(err))
		}
		return nil
	})
}

// EndOffsets returns the high water mark of every partition of topic: the
// offset the next record written to that partition will get.
func EndOffsets(ctx context.Context, cfg Config, topic string) (map[int32]int64, error) {
	sc, err := cfg.Sarama()
	if err != nil {
		return nil, fmt.Errorf("reading end offsets of %s: %w", topic, err)
	}
	var offsets map[int32]int64
	err = runCtx(ctx, func() error {
		client, err := sarama.NewClient(cfg.Brokers, sc)
		if err != nil {
			return fmt.Errorf("connecting to kafka %v: %w", cfg.Brokers, classify(err))
		}
		defer func() { _ = client.Close() }()
		parts, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("listing partitions of %s: %w", topic, classify(err))
		}
		out := make(map[int32]int64, len(parts))
		for _, p := range parts {
			off, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return fmt.Errorf("reading end offset of %s/%d: %w", topic, p, classify(err))
			}
			out[p] = off
		}
		offsets = out
		return nil
	})
	if err != nil {
		return nil, err
	}
	return offsets, nil
}

// runCtx runs fn, which cannot be interrupted, and returns its error, or
// ctx's error if ctx ends first; fn then finishes in the background.
func runCtx(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
