-- Up Migration

-- Typed settings per scope. value holds JSON of the declared type; a secret_ref holds the
-- secret's name as a JSON string.
CREATE TABLE config_entries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
  key text COLLATE "C" NOT NULL,
  value_type text NOT NULL CHECK (value_type IN ('string', 'int', 'bool', 'json', 'secret_ref')),
  value jsonb NOT NULL,
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT config_entries_scope_key_key UNIQUE NULLS NOT DISTINCT (organization_id, key)
);

-- Secrets per scope, AES-256-GCM sealed. key_id names the key that sealed the value so keys
-- can be rotated; the GCM associated data binds each value to its scope and name.
CREATE TABLE secrets (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
  name text COLLATE "C" NOT NULL,
  key_id text NOT NULL,
  nonce bytea NOT NULL,
  ciphertext bytea NOT NULL,
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT secrets_scope_name_key UNIQUE NULLS NOT DISTINCT (organization_id, name)
);

-- Down Migration
DROP TABLE secrets;
DROP TABLE config_entries;
