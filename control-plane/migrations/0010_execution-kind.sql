-- Up Migration

-- What an execution runs: a workflow, or a data provider (then `workflow` holds the
-- provider's name and `params` its inputs). Existing rows are workflow runs.
ALTER TABLE executions
  ADD COLUMN kind text NOT NULL DEFAULT 'workflow' CHECK (kind IN ('workflow', 'data_provider'));
CREATE INDEX executions_org_kind_created_idx ON executions (organization_id, kind, created_at DESC, id DESC);

-- Down Migration
DROP INDEX executions_org_kind_created_idx;
ALTER TABLE executions DROP COLUMN kind;
