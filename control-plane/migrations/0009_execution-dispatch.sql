-- Up Migration

-- When the execution's job was confirmed stored in JetStream; NULL while it still has to be
-- published (NATS was unreachable at start, or the control plane stopped in between).
ALTER TABLE executions ADD COLUMN dispatched_at timestamptz;
UPDATE executions SET dispatched_at = created_at;
CREATE INDEX executions_undispatched_idx ON executions (created_at)
  WHERE status = 'queued' AND dispatched_at IS NULL;

-- Down Migration
DROP INDEX executions_undispatched_idx;
ALTER TABLE executions DROP COLUMN dispatched_at;
