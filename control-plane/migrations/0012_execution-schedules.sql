-- Up Migration

-- The fire time of a run that a workflow's schedule started; null for every other start.
ALTER TABLE executions ADD COLUMN scheduled_for timestamptz;

-- One run per (organization, workflow, fire time): every control plane replica fires the same
-- schedules, and this index lets exactly one insert of each fire win (ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX executions_schedule_fire_key
  ON executions (organization_id, workflow, scheduled_for)
  WHERE scheduled_for IS NOT NULL;

-- A fire waits while the schedule's previous run is still queued or running: found through
-- this index, however long the schedule's history grows.
CREATE INDEX executions_schedule_active_idx
  ON executions (organization_id, workflow)
  WHERE scheduled_for IS NOT NULL AND status IN ('queued', 'running');

-- Down Migration
DROP INDEX executions_schedule_active_idx;
DROP INDEX executions_schedule_fire_key;
ALTER TABLE executions DROP COLUMN scheduled_for;
