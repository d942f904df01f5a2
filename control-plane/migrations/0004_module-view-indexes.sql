-- Up Migration

-- Rebuilding an effective view reads (path, content_hash) of every global module in path
-- order, and of one organization's modules. Covering indexes turn both into index-only scans.
CREATE INDEX modules_global_view_idx ON modules (path) INCLUDE (content_hash)
  WHERE organization_id IS NULL;
CREATE INDEX modules_org_view_idx ON modules (organization_id, path) INCLUDE (content_hash)
  WHERE organization_id IS NOT NULL;

-- Down Migration
DROP INDEX modules_org_view_idx;
DROP INDEX modules_global_view_idx;
