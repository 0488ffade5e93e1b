-- Sluice v1 stream tables. Works on MariaDB >= 10.6 and MySQL 8.
-- Partitioned tables start with only the catch-all partition `pmax`; Sluice
-- splits it into daily partitions (yesterday .. N days ahead) right after the
-- migrations run, and PartitionMaintenanceWorkflow keeps it that way.
-- Every primary key includes the partition column (MySQL error 1503).

CREATE TABLE IF NOT EXISTS events (
  event_date    DATE         NOT NULL COMMENT 'UTC date of occurred_at; partition key',
  event_id      VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  type          VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  occurred_at   DATETIME(6)  NOT NULL COMMENT 'UTC',
  user_id       VARCHAR(64)  NOT NULL,
  item_id       VARCHAR(64)  NOT NULL DEFAULT '' COMMENT 'empty when the event has none',
  channel       VARCHAR(32)  NOT NULL DEFAULT '',
  city          VARCHAR(64)  NOT NULL DEFAULT '',
  attrs         TEXT         NULL COMMENT 'JSON object, at most 8 KiB',
  src_partition INT          NOT NULL COMMENT 'Kafka partition the row came from',
  src_offset    BIGINT       NOT NULL COMMENT 'Kafka offset the row came from',
  ingest_id     BIGINT       NOT NULL COMMENT 'id of the batch that inserted the row',
  ingested_at   DATETIME(6)  NOT NULL,
  PRIMARY KEY (event_date, event_id),
  KEY ix_events_type_item (event_date, type, item_id),
  KEY ix_events_user (user_id, event_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
PARTITION BY RANGE COLUMNS(event_date) (PARTITION pmax VALUES LESS THAN (MAXVALUE));

CREATE TABLE IF NOT EXISTS item_counts_minute (
  event_date    DATE         NOT NULL COMMENT 'UTC date of minute_start; partition key',
  minute_start  DATETIME     NOT NULL COMMENT 'UTC minute',
  type          VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  item_id       VARCHAR(64)  NOT NULL,
  channel       VARCHAR(32)  NOT NULL,
  city          VARCHAR(64)  NOT NULL,
  cnt           BIGINT       NOT NULL,
  updated_at    DATETIME(6)  NOT NULL,
  PRIMARY KEY (event_date, minute_start, type, item_id, channel, city)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
PARTITION BY RANGE COLUMNS(event_date) (PARTITION pmax VALUES LESS THAN (MAXVALUE));

CREATE TABLE IF NOT EXISTS kafka_offsets (
  pipeline        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  topic           VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kafka_partition INT          NOT NULL,
  next_offset     BIGINT       NOT NULL COMMENT 'offset of the next message to consume',
  updated_at      DATETIME(6)  NOT NULL,
  PRIMARY KEY (pipeline, topic, kafka_partition)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS dead_letters (
  dl_date         DATE         NOT NULL COMMENT 'UTC date it was parked; partition key',
  pipeline        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  topic           VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kafka_partition INT          NOT NULL,
  kafka_offset    BIGINT       NOT NULL,
  raw             MEDIUMBLOB   NOT NULL,
  reason          VARCHAR(1024) NOT NULL,
  created_at      DATETIME(6)  NOT NULL,
  PRIMARY KEY (dl_date, pipeline, topic, kafka_partition, kafka_offset)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
PARTITION BY RANGE COLUMNS(dl_date) (PARTITION pmax VALUES LESS THAN (MAXVALUE));
