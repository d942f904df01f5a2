-- Up Migration

-- Discovery state per module: every write sets it back to pending; the discovery worker
-- loads the module in the sandbox and records what it declares, or why it could not.
ALTER TABLE modules
  ADD COLUMN discovery_status text NOT NULL DEFAULT 'pending'
    CHECK (discovery_status IN ('pending', 'ok', 'failed', 'skipped')),
  ADD COLUMN discovery_error text,
  ADD COLUMN discovered_at timestamptz;
-- Non-code modules (JSON) declare nothing.
UPDATE modules SET discovery_status = 'skipped' WHERE path LIKE '%.json';
CREATE INDEX modules_discovery_pending_idx ON modules (id) WHERE discovery_status = 'pending';

-- Workflows and data providers, per scope, as their modules declare them. A name is unique
-- per scope; an organization's workflow of the same name overrides the global one.
CREATE TABLE workflows (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
  name text COLLATE "C" NOT NULL,
  module_path text COLLATE "C" NOT NULL,
  export_name text NOT NULL,
  module_hash text NOT NULL,
  metadata jsonb NOT NULL,
  discovered_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT workflows_scope_name_key UNIQUE NULLS NOT DISTINCT (organization_id, name)
);
CREATE INDEX workflows_module_idx ON workflows (organization_id, module_path);

CREATE TABLE data_providers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
  name text COLLATE "C" NOT NULL,
  module_path text COLLATE "C" NOT NULL,
  export_name text NOT NULL,
  module_hash text NOT NULL,
  metadata jsonb NOT NULL,
  discovered_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT data_providers_scope_name_key UNIQUE NULLS NOT DISTINCT (organization_id, name)
);
CREATE INDEX data_providers_module_idx ON data_providers (organization_id, module_path);

-- Down Migration
DROP TABLE data_providers;
DROP TABLE workflows;
DROP INDEX modules_discovery_pending_idx;
ALTER TABLE modules DROP COLUMN discovered_at, DROP COLUMN discovery_error, DROP COLUMN discovery_status;
