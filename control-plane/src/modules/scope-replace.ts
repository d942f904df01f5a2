import type { SqlOrTx } from "../db/postgres.js";
import { type Scope, scopeOrganizationId } from "../scope.js";
import { initialDiscoveryStatus } from "./discovery-status.js";
import type { CachedPointer } from "./module-cache.js";
import { globalHashesAt, rebaseOverrides, writeScopeState } from "./scope-state.js";
import { addSum, contentHashOf, entryHash, subtractSum } from "./view-hash.js";

/** A module of the scope as it stands before a replacement. */
export interface CurrentModule {
  contentHash: string;
  sizeBytes: number;
  /** The git blob it was written from; null when written through the API. */
  gitBlob: string | null;
}

/** What a replacement changes: everything else in the scope stays untouched. */
export interface ScopeReplacement {
  /** New modules, and modules whose content changed. */
  writes: ReadonlyArray<{ path: string; content: string; gitBlob: string | null }>;
  /** Modules whose content is the same but which now come from this git blob. */
  blobs: ReadonlyArray<{ path: string; gitBlob: string }>;
  deletes: readonly string[];
}

/** What a replacement did, and the cache entries to write once it commits. */
export interface AppliedReplacement {
  added: string[];
  updated: string[];
  deleted: string[];
  cacheEntries: Array<{ scope: Scope; path: string; pointer: CachedPointer; content: string }>;
}

/** Reads the scope's modules (path → hash, size, git blob); call with the scope locked. */
export async function readScopeModules(
  tx: SqlOrTx,
  scope: Scope,
): Promise<Map<string, CurrentModule>> {
  const rows = await tx<
    { path: string; content_hash: string; size_bytes: number; git_blob: string | null }[]
  >`
    select path, content_hash, size_bytes, git_blob from modules
    where organization_id is not distinct from ${scopeOrganizationId(scope)}`;
  return new Map(
    rows.map((r) => [
      r.path,
      { contentHash: r.content_hash, sizeBytes: r.size_bytes, gitBlob: r.git_blob },
    ]),
  );
}

/**
 * Applies many module writes and deletions to one scope inside the caller's transaction,
 * with the scope already locked (`scopeSum` is its locked sum): bulk statements for the
 * rows, and the same view-sum bookkeeping as single writes, including the rebase of every
 * override when global modules change. What modules declared goes with deleted modules;
 * written modules become pending for discovery.
 */
export async function applyScopeReplacement(
  tx: SqlOrTx,
  scope: Scope,
  scopeSum: bigint,
  current: ReadonlyMap<string, CurrentModule>,
  replacement: ScopeReplacement,
): Promise<AppliedReplacement> {
  const organizationId = scopeOrganizationId(scope);
  const { writes, blobs, deletes } = replacement;
  const touched = [...writes.map((w) => w.path), ...deletes];
  const globalHashes = scope.kind === "organization" ? await globalHashesAt(tx, touched) : null;
  // What an absent own module contributes: for an organization, the global module it
  // falls back to; for the global scope, nothing.
  const fallback = (path: string): bigint => {
    const hash = globalHashes?.get(path);
    return hash ? entryHash(path, hash) : 0n;
  };
  const globalChanges = new Map<string, { before: bigint; after: bigint }>();
  let sum = scopeSum;
  let countDelta = 0;
  let bytesDelta = 0;
  const applied: AppliedReplacement = { added: [], updated: [], deleted: [], cacheEntries: [] };

  const hashes = writes.map((w) => contentHashOf(w.content));
  const sizes = writes.map((w) => Buffer.byteLength(w.content, "utf8"));
  writes.forEach((write, i) => {
    const existing = current.get(write.path);
    const removed = existing ? entryHash(write.path, existing.contentHash) : fallback(write.path);
    const added = entryHash(write.path, hashes[i] as string);
    sum = addSum(subtractSum(sum, removed), added);
    bytesDelta += (sizes[i] as number) - (existing?.sizeBytes ?? 0);
    if (!existing) countDelta++;
    if (scope.kind === "global") globalChanges.set(write.path, { before: removed, after: added });
    (existing ? applied.updated : applied.added).push(write.path);
  });
  for (const path of deletes) {
    const existing = current.get(path);
    if (!existing) continue;
    const removed = entryHash(path, existing.contentHash);
    sum = addSum(subtractSum(sum, removed), fallback(path));
    bytesDelta -= existing.sizeBytes;
    countDelta--;
    if (scope.kind === "global") globalChanges.set(path, { before: removed, after: 0n });
    applied.deleted.push(path);
  }

  if (writes.length > 0) {
    const rows = await tx<
      { path: string; content_hash: string; revision: string; created_at: Date; updated_at: Date }[]
    >`
      insert into modules (organization_id, path, content, content_hash, size_bytes, discovery_status, git_blob)
      select ${organizationId}::uuid, u.path, u.content, u.content_hash, u.size_bytes, u.status, u.git_blob
      from unnest(${writes.map((w) => w.path)}::text[], ${writes.map((w) => w.content)}::text[],
        ${hashes}::text[], ${sizes}::int[], ${writes.map((w) => initialDiscoveryStatus(w.path))}::text[],
        ${writes.map((w) => w.gitBlob)}::text[])
        as u(path, content, content_hash, size_bytes, status, git_blob)
      on conflict on constraint modules_scope_path_key do update
      set content = excluded.content, content_hash = excluded.content_hash,
        size_bytes = excluded.size_bytes, revision = nextval('module_revisions'), updated_at = now(),
        discovery_status = excluded.discovery_status, discovery_error = null, discovered_at = null,
        git_blob = excluded.git_blob
      returning path, content_hash, revision, created_at, updated_at`;
    const contentOf = new Map(writes.map((w) => [w.path, w.content]));
    for (const row of rows) {
      applied.cacheEntries.push({
        scope,
        path: row.path,
        pointer: {
          revision: Number(row.revision),
          hash: row.content_hash,
          createdAt: row.created_at.getTime(),
          updatedAt: row.updated_at.getTime(),
        },
        content: contentOf.get(row.path) ?? "",
      });
    }
  }
  if (blobs.length > 0) {
    await tx`
      update modules m set git_blob = u.git_blob
      from unnest(${blobs.map((b) => b.path)}::text[], ${blobs.map((b) => b.gitBlob)}::text[])
        as u(path, git_blob)
      where m.organization_id is not distinct from ${organizationId} and m.path = u.path`;
  }
  if (applied.deleted.length > 0) {
    await tx`
      delete from modules
      where organization_id is not distinct from ${organizationId} and path = any(${applied.deleted}::text[])`;
    await tx`
      delete from workflows
      where organization_id is not distinct from ${organizationId} and module_path = any(${applied.deleted}::text[])`;
    await tx`
      delete from data_providers
      where organization_id is not distinct from ${organizationId} and module_path = any(${applied.deleted}::text[])`;
    const [next] = await tx<{ revision: string }[]>`select nextval('module_revisions') as revision`;
    const revision = Number(next?.revision);
    for (const path of applied.deleted) {
      applied.cacheEntries.push({ scope, path, pointer: { revision, hash: null }, content: "" });
    }
  }
  if (scope.kind === "global") await rebaseOverrides(tx, globalChanges);
  if (applied.added.length + applied.updated.length + applied.deleted.length > 0) {
    await writeScopeState(tx, organizationId, sum, countDelta, bytesDelta);
  }
  return applied;
}
