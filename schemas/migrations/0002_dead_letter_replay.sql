-- Dead letters remember whether a replay re-ingested them, so a replay
-- (DeadLetterReplayWorkflow) runs exactly once per message.
ALTER TABLE dead_letters
  ADD COLUMN replayed_at DATETIME(6) NULL COMMENT 'when a replay ingested it; NULL = still parked',
  ADD COLUMN replay_note VARCHAR(1024) NULL COMMENT 'outcome of the last replay attempt';
