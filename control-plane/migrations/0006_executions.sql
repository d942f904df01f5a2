-- Up Migration

-- Runner identities are users of kind 'runner': they call RunnerService and nothing else.
ALTER TABLE users ADD COLUMN kind text NOT NULL DEFAULT 'human' CHECK (kind IN ('human', 'runner'));

-- One row per execution, stamped with its organization (never cascaded). The workflow's
-- module, network list and timeout are copied at start, so a later module change does not
-- alter a queued run. token_hash is the SHA-256 of the current attempt's execution token,
-- cleared when the execution ends.
CREATE TABLE executions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  workflow text NOT NULL,
  module_path text NOT NULL,
  network text[] NOT NULL DEFAULT '{}',
  timeout_seconds integer NOT NULL CHECK (timeout_seconds > 0),
  status text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled')),
  params jsonb NOT NULL,
  result jsonb,
  error jsonb,
  variables jsonb NOT NULL DEFAULT '{}',
  started_by_user_id uuid,
  runner_name text,
  attempt integer NOT NULL DEFAULT 0,
  token_hash bytea,
  cancel_requested boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at timestamptz,
  finished_at timestamptz
);
CREATE INDEX executions_org_created_idx ON executions (organization_id, created_at DESC, id DESC);
CREATE INDEX executions_active_idx ON executions (status) WHERE status IN ('queued', 'running');
CREATE UNIQUE INDEX executions_token_idx ON executions (token_hash) WHERE token_hash IS NOT NULL;

CREATE TABLE execution_logs (
  execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
  sequence bigint GENERATED ALWAYS AS IDENTITY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  level text NOT NULL CHECK (level IN ('debug', 'info', 'warning', 'error')),
  message text NOT NULL,
  data jsonb,
  PRIMARY KEY (execution_id, sequence)
);

CREATE TABLE execution_checkpoints (
  execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
  sequence bigint GENERATED ALWAYS AS IDENTITY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  name text NOT NULL,
  data jsonb,
  PRIMARY KEY (execution_id, sequence)
);

-- Down Migration
DROP TABLE execution_checkpoints;
DROP TABLE execution_logs;
DROP TABLE executions;
ALTER TABLE users DROP COLUMN kind;
