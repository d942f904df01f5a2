-- Up Migration

-- Every module write takes the next revision; the Redis cache uses it to refuse stale fills.
CREATE SEQUENCE module_revisions;

-- Source files per scope. NULL organization_id = global. One row per (scope, path).
CREATE TABLE modules (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
  path text COLLATE "C" NOT NULL,
  content text NOT NULL,
  content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
  size_bytes integer NOT NULL CHECK (size_bytes >= 0),
  revision bigint NOT NULL DEFAULT nextval('module_revisions'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT modules_scope_path_key UNIQUE NULLS NOT DISTINCT (organization_id, path)
);
-- Finds every organization overriding a global path when the global module changes.
CREATE INDEX modules_path_idx ON modules (path) WHERE organization_id IS NOT NULL;

-- Per scope, an additive multiset hash of its modules, kept in the same transaction as
-- every module write. For the global row: the sum of h(path, hash) over global modules.
-- For an organization: the sum over its modules of h(path, own hash) − h(path, global hash
-- or 0). An organization's effective fingerprint is global.view_sum + org.view_sum, so an
-- unchanged effective tree is recognised from two rows, whatever the module count.
CREATE TABLE module_scope_states (
  organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
  view_sum bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
  module_count integer NOT NULL DEFAULT 0,
  total_bytes bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT module_scope_states_scope_key UNIQUE NULLS NOT DISTINCT (organization_id)
);
INSERT INTO module_scope_states (organization_id) VALUES (NULL);

-- Down Migration
DROP TABLE module_scope_states;
DROP TABLE modules;
DROP SEQUENCE module_revisions;
