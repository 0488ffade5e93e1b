package devstack

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KafkaConfig configures the in-process Kafka-protocol broker.
type KafkaConfig struct {
	// DataDir keeps topics, messages and group offsets across restarts;
	// empty means in memory.
	DataDir string
	// Port on 127.0.0.1 (default 9092; 0 after withDefaults never happens,
	// use FreePort for tests).
	Port int
	// Partitions of auto-created topics (default 6).
	Partitions int
}

// Kafka is a running in-process broker.
type Kafka struct {
	cluster *kfake.Cluster
	// Brokers are the addresses clients dial.
	Brokers []string
}

// StartKafka starts a one-broker cluster speaking the Kafka wire protocol.
// It is a development stand-in: production points Sluice at real brokers.
func StartKafka(c KafkaConfig) (*Kafka, error) {
	if c.Port == 0 {
		c.Port = 9092
	}
	if c.Partitions == 0 {
		c.Partitions = 6
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(c.Port),
		kfake.DefaultNumPartitions(c.Partitions),
		kfake.ClusterID("sluice-dev"),
	}
	if c.DataDir != "" {
		if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating Kafka data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(c.DataDir))
	}
	cl, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting in-process Kafka broker on 127.0.0.1:%d: %w", c.Port, err)
	}
	return &Kafka{cluster: cl, Brokers: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))}}, nil
}

// Close stops the broker (its data dir keeps the data).
func (k *Kafka) Close() { k.cluster.Close() }
