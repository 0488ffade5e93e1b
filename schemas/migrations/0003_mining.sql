-- Sluice v1 offline mining tables (MiningWorkflow) and the query API's
-- sources. Works on MariaDB >= 10.6 and MySQL 8.
--
-- Publication model: every mining run gets a run_id in mining_runs. Shard
-- activities write under that run_id; the run becomes visible only when its
-- mining_runs row turns 'succeeded' (one short transaction), so readers see
-- either the previous run or the new one, never half of one.
--   * trending_daily holds the published ranking per day; a run replaces the
--     days of its window in one transaction from trending_stage.
--   * co_shares and recommendations are LIST-partitioned by run_id: a run
--     adds its own partition, and the partitions of superseded runs are
--     dropped after publication (cheap, no row-by-row DELETE).

CREATE TABLE IF NOT EXISTS mining_runs (
  run_id          BIGINT       NOT NULL AUTO_INCREMENT,
  job             VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'trending | co_share | recommend',
  window_from     DATE         NOT NULL COMMENT 'first UTC day of the window',
  window_to       DATE         NOT NULL COMMENT 'last UTC day of the window (inclusive)',
  params          TEXT         NOT NULL COMMENT 'JSON of the job parameters',
  status          VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'running | succeeded | failed',
  shards          INT          NOT NULL DEFAULT 0 COMMENT 'day or user shards fanned out',
  rows_in         BIGINT       NOT NULL DEFAULT 0 COMMENT 'event rows read',
  rows_out        BIGINT       NOT NULL DEFAULT 0 COMMENT 'result rows published',
  workflow_id     VARCHAR(255) NOT NULL,
  workflow_run_id VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  error           VARCHAR(1024) NULL,
  started_at      DATETIME(6)  NOT NULL,
  finished_at     DATETIME(6)  NULL,
  PRIMARY KEY (run_id),
  UNIQUE KEY ux_mining_runs_attempt (workflow_id, workflow_run_id, job),
  KEY ix_mining_runs_job (job, status, run_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS trending_daily (
  day      DATE        NOT NULL COMMENT 'UTC day; partition key',
  city     VARCHAR(64) NOT NULL COMMENT 'empty string = all cities together',
  rank_no  SMALLINT    NOT NULL COMMENT '1 = most distinct sharers',
  item_id  VARCHAR(64) NOT NULL,
  users    BIGINT      NOT NULL COMMENT 'distinct users who shared the item that day',
  shares   BIGINT      NOT NULL COMMENT 'share events that day',
  run_id   BIGINT      NOT NULL COMMENT 'mining_runs.run_id that published the row',
  PRIMARY KEY (day, city, rank_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
PARTITION BY RANGE COLUMNS(day) (PARTITION pmax VALUES LESS THAN (MAXVALUE));

-- Per-day results of a trending run before it is published.
CREATE TABLE IF NOT EXISTS trending_stage (
  run_id   BIGINT      NOT NULL,
  day      DATE        NOT NULL,
  city     VARCHAR(64) NOT NULL,
  rank_no  SMALLINT    NOT NULL,
  item_id  VARCHAR(64) NOT NULL,
  users    BIGINT      NOT NULL,
  shares   BIGINT      NOT NULL,
  PRIMARY KEY (run_id, day, city, rank_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Directed pairs: users who shared item_id also shared other_item_id.
-- rank_no orders an item's partners by support, then lift, then id.
CREATE TABLE IF NOT EXISTS co_shares (
  run_id        BIGINT      NOT NULL,
  item_id       VARCHAR(64) NOT NULL COMMENT 'antecedent A',
  rank_no       INT         NOT NULL COMMENT '1 = strongest partner of item_id',
  other_item_id VARCHAR(64) NOT NULL COMMENT 'consequent B',
  support       BIGINT      NOT NULL COMMENT 'distinct users who shared both A and B in the lookback',
  confidence    DOUBLE      NOT NULL COMMENT 'support / users(A)',
  lift          DOUBLE      NOT NULL COMMENT 'support * users / (users(A) * users(B))',
  PRIMARY KEY (run_id, item_id, rank_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
PARTITION BY LIST (run_id) (PARTITION p0 VALUES IN (0));

CREATE TABLE IF NOT EXISTS recommendations (
  run_id   BIGINT      NOT NULL,
  user_id  VARCHAR(64) NOT NULL,
  rank_no  SMALLINT    NOT NULL COMMENT '1 = best',
  item_id  VARCHAR(64) NOT NULL,
  score    DOUBLE      NOT NULL,
  reason   VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'co_share | trending',
  via      VARCHAR(64) NOT NULL COMMENT 'co_share: the shared item that led here; trending: the city',
  PRIMARY KEY (run_id, user_id, rank_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
PARTITION BY LIST (run_id) (PARTITION p0 VALUES IN (0));

-- Shard results waiting for a run's merge step (co_share partial counts),
-- in chunks below max_allowed_packet; deleted when the run ends.
CREATE TABLE IF NOT EXISTS mining_partials (
  run_id  BIGINT   NOT NULL,
  shard   INT      NOT NULL,
  part    INT      NOT NULL,
  payload LONGBLOB NOT NULL,
  PRIMARY KEY (run_id, shard, part)
) ENGINE=InnoDB;
