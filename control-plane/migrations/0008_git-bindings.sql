-- Up Migration

-- A git repository bound to exactly one scope (NULL organization_id = global). The two
-- unique constraints are the "one repo = one scope" rule: a scope has at most one binding,
-- and a repository (normalized URL + subfolder) is bound at most once.
CREATE TABLE git_bindings (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
  repository_url text NOT NULL,
  -- Scheme-independent identity of the repository: host/path (file:path for local ones).
  repository_key text NOT NULL,
  branch text NOT NULL,
  subfolder text COLLATE "C" NOT NULL DEFAULT '',
  credential_kind text NOT NULL DEFAULT 'none' CHECK (credential_kind IN ('none', 'token', 'ssh_key')),
  -- AES-256-GCM like secrets; AAD binds the value to the binding id.
  credential_key_id text,
  credential_nonce bytea,
  credential_ciphertext bytea,
  webhook_key_id text NOT NULL,
  webhook_nonce bytea NOT NULL,
  webhook_ciphertext bytea NOT NULL,
  poll_interval_seconds integer NOT NULL DEFAULT 0 CHECK (poll_interval_seconds >= 0),
  next_poll_at timestamptz,
  last_commit text,
  last_synced_at timestamptz,
  last_sync_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT git_bindings_scope_key UNIQUE NULLS NOT DISTINCT (organization_id),
  CONSTRAINT git_bindings_repository_key UNIQUE (repository_key, subfolder),
  CHECK ((credential_kind = 'none') = (credential_ciphertext IS NULL))
);
CREATE INDEX git_bindings_poll_idx ON git_bindings (next_poll_at) WHERE poll_interval_seconds > 0;

-- One row per sync run: its report. History goes with the binding; the audit log keeps
-- each sync's summary.
CREATE TABLE git_syncs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  binding_id uuid NOT NULL REFERENCES git_bindings (id) ON DELETE CASCADE,
  organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
  trigger text NOT NULL CHECK (trigger IN ('manual', 'schedule', 'webhook')),
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  commit_before text,
  commit_after text,
  added text[] NOT NULL DEFAULT '{}',
  updated text[] NOT NULL DEFAULT '{}',
  deleted text[] NOT NULL DEFAULT '{}',
  unchanged_count integer NOT NULL DEFAULT 0,
  -- [{path, reason, detail}], at most 1,000; skipped_count is the full number.
  skipped jsonb NOT NULL DEFAULT '[]',
  skipped_count integer NOT NULL DEFAULT 0,
  error text,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz
);
CREATE INDEX git_syncs_binding_idx ON git_syncs (binding_id, started_at DESC, id DESC);

-- The git blob a module was written from (NULL for modules written through the API), so an
-- incremental sync compares blob ids instead of reading every file.
ALTER TABLE modules ADD COLUMN git_blob text;

-- Down Migration
ALTER TABLE modules DROP COLUMN git_blob;
DROP TABLE git_syncs;
DROP TABLE git_bindings;
