-- Up Migration

-- Every change that decides what an API key may do is announced on a channel, whichever
-- process or person makes it (a replica, the reseal command, an operator's SQL), so each
-- control-plane replica forgets the key checks it remembers (identity-store.ts) at once.
-- Per statement, and only for the columns that matter: the once-a-minute `last_used_at`
-- update of a key in use announces nothing, or it would wipe every replica's memory.
CREATE FUNCTION bifrost_principals_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('bifrost_principals_changed', '');
  RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_principals_changed
  AFTER UPDATE OF revoked_at, expires_at, user_id, lookup, secret_hash OR DELETE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION bifrost_principals_changed();
CREATE TRIGGER users_principals_changed
  AFTER UPDATE OR DELETE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION bifrost_principals_changed();
CREATE TRIGGER memberships_principals_changed
  AFTER INSERT OR UPDATE OR DELETE ON memberships
  FOR EACH STATEMENT EXECUTE FUNCTION bifrost_principals_changed();
CREATE TRIGGER organizations_principals_changed
  AFTER UPDATE OF active OR DELETE ON organizations
  FOR EACH STATEMENT EXECUTE FUNCTION bifrost_principals_changed();

-- Down Migration
DROP TRIGGER organizations_principals_changed ON organizations;
DROP TRIGGER memberships_principals_changed ON memberships;
DROP TRIGGER users_principals_changed ON users;
DROP TRIGGER api_keys_principals_changed ON api_keys;
DROP FUNCTION bifrost_principals_changed();
