-- Up Migration

-- Runners as they announce themselves: capacity, load and the last heartbeat.
CREATE TABLE runners (
  name text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
  user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  capacity integer NOT NULL CHECK (capacity >= 0),
  in_flight integer NOT NULL CHECK (in_flight >= 0),
  version text NOT NULL DEFAULT '',
  registered_at timestamptz NOT NULL DEFAULT now(),
  last_heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE runners;
