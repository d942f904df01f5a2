import { type Actor, recordAudit } from "../audit/audit-log.js";
import { createCascade, mergeEffective, type Provenance } from "../cascade/cascade.js";
import type { Fragment, Sql, SqlOrTx } from "../db/postgres.js";
import { invalidArgument, notFound, resourceExhausted } from "../errors.js";
import type { Logger } from "../log.js";
import { assertOrganizationExists } from "../organizations/organization-store.js";
import {
  describeScope,
  globalScope,
  organizationScope,
  type Scope,
  scopeOfRow,
  scopeOrganizationId,
} from "../scope.js";
import { type DiscoveryStatus, initialDiscoveryStatus } from "./discovery-status.js";
import { buildImportMap, type ImportMap } from "./import-map.js";
import type { CachedPointer, ModuleCache } from "./module-cache.js";
import { validateModulePath, validatePathPrefix } from "./module-path.js";
import {
  type AppliedReplacement,
  applyScopeReplacement,
  type CurrentModule,
  readScopeModules,
  type ScopeReplacement,
} from "./scope-replace.js";
import {
  assertNotGitBound,
  globalHashesAt,
  lockScopeStates,
  rebaseOverrides,
  writeScopeState,
} from "./scope-state.js";
import {
  addSum,
  bytesToSum,
  contentHashOf,
  entryHash,
  subtractSum,
  viewFingerprint,
} from "./view-hash.js";

/** The columns `viewSumColumns` adds to a row. */
export interface ViewSums {
  global_view_sum: Buffer | null;
  own_view_sum: Buffer | null;
}

/** A stored module's metadata, with its content when the read asked for it. */
export interface ModuleRecord {
  scope: Scope;
  path: string;
  content: string;
  contentHash: string;
  sizeBytes: number;
  createdAt: Date;
  updatedAt: Date;
  /** Discovery state, where the read included it (exact-scope reads and listings). */
  discovery?: { status: DiscoveryStatus; error: string | null };
}

/** Import maps kept in memory (one per organization, most recently used). */
const maxCachedImportMaps = 10_000;

/** One entry of an organization's effective tree. */
export interface EffectiveEntry {
  path: string;
  contentHash: string;
  provenance: Provenance;
}

/** The effective tree of an organization and the fingerprint that identifies it. */
export interface EffectiveView {
  fingerprint: string;
  /** Omitted (undefined) when the caller's known fingerprint is still current. */
  entries: EffectiveEntry[] | undefined;
}

/** Reads and writes modules per scope, keeping the view sums and the Redis cache coherent. */
export interface ModuleStore {
  put(
    actor: Actor,
    scope: Scope,
    path: string,
    content: string,
  ): Promise<{ module: ModuleRecord; changed: boolean }>;
  get(scope: Scope, path: string): Promise<ModuleRecord>;
  resolve(
    organizationId: string,
    path: string,
  ): Promise<{ module: ModuleRecord; provenance: Provenance }>;
  delete(actor: Actor, scope: Scope, path: string): Promise<void>;
  list(
    scope: Scope,
    options: { prefix: string; after: string; limit: number },
  ): Promise<ModuleRecord[]>;
  listEffective(
    organizationId: string,
    options: { prefix: string; after: string; limit: number },
  ): Promise<Array<{ module: ModuleRecord; provenance: Provenance }>>;
  effectiveView(organizationId: string, knownFingerprint?: string): Promise<EffectiveView>;
  /**
   * The organization's import map and the fingerprint it was built from. Kept per
   * organization and reused while the fingerprint is unchanged, so the check costs one
   * statement and the entries are only read again after the organization's effective code
   * changed.
   */
  importMap(organizationId: string): Promise<{ fingerprint: string; importMap: ImportMap }>;
  /**
   * The view sums of the organization whose id is in `organizationIdColumn`, as columns of
   * another statement (no round trip of its own); pass that row to `importMapOf`.
   */
  viewSumColumns(organizationIdColumn: string): Fragment;
  /**
   * `importMap` for the sums `viewSumColumns` read: no statement when this fingerprint's map
   * is known, else `importMap` itself (which reads the sums again with the entries).
   */
  importMapOf(
    organizationId: string,
    row: ViewSums,
  ): Promise<{ fingerprint: string; importMap: ImportMap }>;
  /** The global scope's own tree (what global modules see when they are discovered). */
  globalView(): Promise<{ fingerprint: string; entries: EffectiveEntry[] }>;
  /** Module contents by hash, restricted to rows the scope's tree can hold. */
  contents(scope: Scope, hashes: readonly string[]): Promise<Map<string, string>>;
  /**
   * Drops a deleted organization's cache entries so no cache hit can still answer for it.
   * Its rows are already gone (foreign keys cascade).
   */
  forgetOrganization(organizationId: string): Promise<void>;
  /** Loads every module into the cache (at start, so the first executions hit it). */
  warmCache(): Promise<number>;
  /**
   * Replaces many of a scope's modules in one transaction (git sync). `plan` runs with the
   * scope locked and sees its current modules; `finish` runs after the writes, in the same
   * transaction. Nothing is written if either throws. Not subject to the git-binding guard:
   * this is how a bound scope changes.
   */
  replaceScope<T>(
    scope: Scope,
    plan: (current: ReadonlyMap<string, CurrentModule>) => Promise<ScopeReplacement>,
    finish: (tx: SqlOrTx, applied: AppliedReplacement) => Promise<T>,
  ): Promise<{ applied: AppliedReplacement; result: T }>;
}

const moduleCascade = createCascade({
  table: "modules",
  keyColumn: "path",
  columns: [
    "content_hash",
    "size_bytes",
    "created_at",
    "updated_at",
    "revision",
    "discovery_status",
    "discovery_error",
  ],
});

// Resolution reads the content too; listings do not.
const moduleResolveCascade = createCascade({
  table: "modules",
  keyColumn: "path",
  columns: ["content", "content_hash", "size_bytes", "created_at", "updated_at", "revision"],
});

function pointerOf(row: Record<string, unknown> | undefined): CachedPointer {
  if (!row) return { revision: 0, hash: null };
  return {
    revision: Number(row.revision),
    hash: row.content_hash as string,
    createdAt: (row.created_at as Date).getTime(),
    updatedAt: (row.updated_at as Date).getTime(),
  };
}

interface ModuleRow {
  organization_id: string | null;
  path: string;
  content?: string;
  content_hash: string;
  size_bytes: number;
  created_at: Date;
  updated_at: Date;
  revision: string;
  discovery_status?: DiscoveryStatus;
  discovery_error?: string | null;
}

/** A row of an effective view as read: the key (path) and the content hash. */
interface ViewRow {
  key: string;
  content_hash: string;
}

function toRecord(row: ModuleRow): ModuleRecord {
  return {
    scope: scopeOfRow(row.organization_id),
    path: row.path,
    content: row.content ?? "",
    contentHash: row.content_hash,
    sizeBytes: row.size_bytes,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...(row.discovery_status && {
      discovery: { status: row.discovery_status, error: row.discovery_error ?? null },
    }),
  };
}

/** Creates the module store over PostgreSQL (truth) and the module cache. */
export function createModuleStore(deps: {
  sql: Sql;
  cache: ModuleCache;
  log: Logger;
  maxModuleBytes: number;
}): ModuleStore {
  const { sql, cache, log, maxModuleBytes } = deps;
  const importMaps = new Map<string, { fingerprint: string; importMap: ImportMap }>();

  // Cache writes happen after commit. A failure there must not fail the request: the
  // revision check and the TTL bound any staleness, and Postgres stays the truth.
  async function updateCache(work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
    } catch (error) {
      log.warn({ err: error }, "module cache update failed");
    }
  }

  // The global (path, content hash) rows of the last view built, with the global view sum of
  // the snapshot they were read in. The sum identifies the global set (the fingerprint rests
  // on the same property), so every snapshot with that sum has exactly these rows: a view
  // rebuild reads only the organization's own rows while the global scope is unchanged.
  let globalView: { sum: string; rows: readonly ViewRow[] } | undefined;

  async function globalViewRows(
    tx: SqlOrTx,
    sumBytes: Buffer | undefined,
  ): Promise<readonly ViewRow[]> {
    const sum = (sumBytes ?? Buffer.alloc(0)).toString("hex");
    if (globalView?.sum === sum) return globalView.rows;
    const rows = await tx<ViewRow[]>`
      select path as key, content_hash from modules where organization_id is null order by path`;
    globalView = { sum, rows };
    return rows;
  }

  // The scope sums of an organization's view and its fingerprint, in one statement (one
  // snapshot); NOT_FOUND for an id that names no organization.
  async function viewState(q: SqlOrTx, organizationId: string) {
    const [state] = await q<
      { global_sum: Buffer | null; own_sum: Buffer | null; org_exists: boolean }[]
    >`
      select
        (select view_sum from module_scope_states where organization_id is null) as global_sum,
        (select view_sum from module_scope_states where organization_id = ${organizationId}) as own_sum,
        exists (select 1 from organizations where id = ${organizationId}) as org_exists`;
    if (!state?.org_exists) await assertOrganizationExists(q, organizationId);
    const globalSum = state?.global_sum ?? undefined;
    const fingerprint = viewFingerprint(
      bytesToSum(globalSum ?? Buffer.alloc(0)),
      bytesToSum(state?.own_sum ?? Buffer.alloc(0)),
    );
    return { fingerprint, globalSum };
  }

  async function globalHashAt(tx: SqlOrTx, path: string): Promise<string | undefined> {
    return (await globalHashesAt(tx, [path])).get(path);
  }

  return {
    async put(actor, scope, rawPath, content) {
      const path = validateModulePath(rawPath);
      const sizeBytes = Buffer.byteLength(content, "utf8");
      if (sizeBytes > maxModuleBytes) {
        throw resourceExhausted(
          `module "${path}" is ${sizeBytes} bytes; at most ${maxModuleBytes} bytes are allowed`,
        );
      }
      // PostgreSQL text cannot hold NUL; refuse it here rather than fail inside the write.
      if (content.includes("\u0000")) {
        throw invalidArgument(`module "${path}" content must not contain NUL characters`);
      }
      const contentHash = contentHashOf(content);
      const organizationId = scopeOrganizationId(scope);
      const result = await sql.begin(async (tx) => {
        const scopeSum = await lockScopeStates(tx, scope);
        await assertNotGitBound(tx, scope);
        const [existing] = await tx<{ content_hash: string; size_bytes: number }[]>`
          select content_hash, size_bytes from modules
          where organization_id is not distinct from ${organizationId} and path = ${path}
          for update`;
        if (existing?.content_hash === contentHash) {
          const [row] = await tx<ModuleRow[]>`
            select organization_id, path, content, content_hash, size_bytes, created_at, updated_at, revision,
              discovery_status, discovery_error
            from modules where organization_id is not distinct from ${organizationId} and path = ${path}`;
          return { row: row as ModuleRow, changed: false };
        }
        const added = entryHash(path, contentHash);
        let removed: bigint;
        if (existing) removed = entryHash(path, existing.content_hash);
        else if (scope.kind === "global") removed = 0n;
        else {
          const globalHash = await globalHashAt(tx, path);
          removed = globalHash ? entryHash(path, globalHash) : 0n;
        }
        if (scope.kind === "global")
          await rebaseOverrides(tx, new Map([[path, { before: removed, after: added }]]));
        await writeScopeState(
          tx,
          organizationId,
          addSum(subtractSum(scopeSum, removed), added),
          existing ? 0 : 1,
          sizeBytes - (existing?.size_bytes ?? 0),
        );
        const [row] = await tx<ModuleRow[]>`
          insert into modules (organization_id, path, content, content_hash, size_bytes, discovery_status)
          values (${organizationId}, ${path}, ${content}, ${contentHash}, ${sizeBytes}, ${initialDiscoveryStatus(path)})
          on conflict on constraint modules_scope_path_key do update
          set content = excluded.content, content_hash = excluded.content_hash,
            size_bytes = excluded.size_bytes, revision = nextval('module_revisions'), updated_at = now(),
            discovery_status = excluded.discovery_status, discovery_error = null, discovered_at = null,
            git_blob = null
          returning organization_id, path, content, content_hash, size_bytes, created_at, updated_at, revision,
            discovery_status, discovery_error`;
        await recordAudit(tx, actor, {
          organizationId,
          action: existing ? "module.update" : "module.create",
          targetType: "module",
          target: path,
          details: { contentHash, sizeBytes, previousContentHash: existing?.content_hash ?? null },
        });
        return { row: row as ModuleRow, changed: true };
      });
      if (result.changed) {
        await updateCache(async () => {
          await cache.putBlob(contentHash, content);
          await cache.putPointer(
            scope,
            path,
            pointerOf(result.row as unknown as Record<string, unknown>),
          );
        });
      }
      return { module: toRecord(result.row), changed: result.changed };
    },

    async get(scope, rawPath) {
      const path = validateModulePath(rawPath);
      const organizationId = scopeOrganizationId(scope);
      const [row] = await sql<ModuleRow[]>`
        select organization_id, path, content, content_hash, size_bytes, created_at, updated_at, revision,
          discovery_status, discovery_error
        from modules where organization_id is not distinct from ${organizationId} and path = ${path}`;
      if (!row) {
        if (organizationId) await assertOrganizationExists(sql, organizationId);
        throw notFound(`module "${path}" not found in ${describeScope(scope)}`);
      }
      return toRecord(row);
    },

    async resolve(organizationId, rawPath) {
      const path = validateModulePath(rawPath);
      const fromCache = await resolveFromCache(organizationId, path);
      if (fromCache) return fromCache;
      const { winner, own, global } = await moduleResolveCascade.resolve(sql, organizationId, path);
      // Without a row of its own, the organization might not exist: check before serving a
      // global module to (or caching pointers for) an id that names nothing.
      if (!own) await assertOrganizationExists(sql, organizationId);
      // Fill both scopes' pointers; the revision check stops these from undoing a write that
      // committed after this read.
      await updateCache(async () => {
        if (winner) await cache.putBlob(winner.content_hash as string, winner.content as string);
        await cache.putPointer(organizationScope(organizationId), path, pointerOf(own));
        await cache.putPointer(globalScope, path, pointerOf(global));
      });
      if (!winner) {
        throw notFound(
          `module "${path}" not found for organization "${organizationId}" or globally`,
        );
      }
      return {
        module: toRecord({ ...(winner as unknown as ModuleRow), path }),
        provenance: winner.provenance,
      };
    },

    async delete(actor, scope, rawPath) {
      const path = validateModulePath(rawPath);
      const organizationId = scopeOrganizationId(scope);
      const revision = await sql.begin(async (tx) => {
        const scopeSum = await lockScopeStates(tx, scope);
        await assertNotGitBound(tx, scope);
        const [deleted] = await tx<{ content_hash: string; size_bytes: number }[]>`
          delete from modules where organization_id is not distinct from ${organizationId} and path = ${path}
          returning content_hash, size_bytes`;
        if (!deleted) throw notFound(`module "${path}" not found in ${describeScope(scope)}`);
        // What the module declared goes with it.
        await tx`delete from workflows where organization_id is not distinct from ${organizationId} and module_path = ${path}`;
        await tx`delete from data_providers where organization_id is not distinct from ${organizationId} and module_path = ${path}`;
        const removed = entryHash(path, deleted.content_hash);
        let restored = 0n;
        if (scope.kind === "global")
          await rebaseOverrides(tx, new Map([[path, { before: removed, after: 0n }]]));
        else {
          const globalHash = await globalHashAt(tx, path);
          restored = globalHash ? entryHash(path, globalHash) : 0n;
        }
        await writeScopeState(
          tx,
          organizationId,
          addSum(subtractSum(scopeSum, removed), restored),
          -1,
          -deleted.size_bytes,
        );
        await recordAudit(tx, actor, {
          organizationId,
          action: "module.delete",
          targetType: "module",
          target: path,
          details: { contentHash: deleted.content_hash },
        });
        const [next] = await tx<
          { revision: string }[]
        >`select nextval('module_revisions') as revision`;
        return Number(next?.revision);
      });
      await updateCache(() => cache.putPointer(scope, path, { revision, hash: null }));
    },

    async list(scope, options) {
      const prefix = validatePathPrefix(options.prefix);
      const organizationId = scopeOrganizationId(scope);
      if (organizationId) await assertOrganizationExists(sql, organizationId);
      const rows = await sql<ModuleRow[]>`
        select organization_id, path, content_hash, size_bytes, created_at, updated_at, revision,
          discovery_status, discovery_error
        from modules
        where organization_id is not distinct from ${organizationId}
          and path > ${options.after} and starts_with(path, ${prefix})
        order by path limit ${options.limit}`;
      return rows.map(toRecord);
    },

    async listEffective(organizationId, options) {
      const prefix = validatePathPrefix(options.prefix);
      await assertOrganizationExists(sql, organizationId);
      const rows = await moduleCascade.listEffective(sql, organizationId, {
        prefix,
        after: options.after,
        limit: options.limit,
      });
      return rows.map((row) => ({
        module: toRecord({ ...(row as unknown as ModuleRow), path: row.key }),
        provenance: row.provenance,
      }));
    },

    async effectiveView(organizationId, knownFingerprint) {
      if (knownFingerprint !== undefined) {
        // The common case, every execution: the caller knows the entries of a fingerprint,
        // and one statement tells whether it is still current.
        const { fingerprint } = await viewState(sql, organizationId);
        if (fingerprint === knownFingerprint) return { fingerprint, entries: undefined };
      }
      // One snapshot for the sums and the entries, so the fingerprint describes exactly the
      // entries returned even while writes land.
      return sql.begin("isolation level repeatable read read only", async (tx) => {
        const { fingerprint, globalSum } = await viewState(tx, organizationId);
        if (knownFingerprint === fingerprint) return { fingerprint, entries: undefined };
        const own = await tx<ViewRow[]>`
          select path as key, content_hash from modules
          where organization_id = ${organizationId} order by path`;
        const global = await globalViewRows(tx, globalSum);
        const entries = mergeEffective(own, global, (row, provenance) => ({
          path: row.key,
          contentHash: row.content_hash,
          provenance,
        }));
        return { fingerprint, entries };
      });
    },

    async importMap(organizationId) {
      const known = importMaps.get(organizationId);
      const view = await this.effectiveView(organizationId, known?.fingerprint);
      if (view.entries === undefined && known) return known;
      const built = {
        fingerprint: view.fingerprint,
        importMap: buildImportMap((view.entries ?? []).map((e) => e.path)),
      };
      // Bounded: the oldest organization's map goes first (Map keeps insertion order).
      importMaps.delete(organizationId);
      importMaps.set(organizationId, built);
      if (importMaps.size > maxCachedImportMaps)
        importMaps.delete(importMaps.keys().next().value as string);
      return built;
    },

    viewSumColumns(organizationIdColumn) {
      return sql`
        (select view_sum from module_scope_states where organization_id is null) as global_view_sum,
        (select view_sum from module_scope_states where organization_id = ${sql(organizationIdColumn)}) as own_view_sum`;
    },

    async importMapOf(organizationId, row) {
      const fingerprint = viewFingerprint(
        bytesToSum(row.global_view_sum ?? Buffer.alloc(0)),
        bytesToSum(row.own_view_sum ?? Buffer.alloc(0)),
      );
      const known = importMaps.get(organizationId);
      if (known?.fingerprint === fingerprint) return known;
      return this.importMap(organizationId);
    },

    async globalView() {
      return sql.begin("isolation level repeatable read read only", async (tx) => {
        const [state] = await tx<{ view_sum: Buffer }[]>`
          select view_sum from module_scope_states where organization_id is null`;
        const rows = await globalViewRows(tx, state?.view_sum);
        return {
          fingerprint: viewFingerprint(bytesToSum(state?.view_sum ?? Buffer.alloc(0)), 0n),
          entries: rows.map((row) => ({
            path: row.key,
            contentHash: row.content_hash,
            provenance: "global" as const,
          })),
        };
      });
    },

    async contents(scope, hashes) {
      if (hashes.length === 0) return new Map();
      // Only rows the scope's tree can contain: its own and, for an organization, the global ones.
      const rows = await sql<{ content_hash: string; content: string }[]>`
        select distinct on (content_hash) content_hash, content from modules
        where content_hash = any(${hashes}::text[])
          and (organization_id is null
            ${scope.kind === "organization" ? sql`or organization_id = ${scope.organizationId}` : sql``})`;
      return new Map(rows.map((row) => [row.content_hash, row.content]));
    },

    async forgetOrganization(organizationId) {
      await updateCache(() => cache.evictOrganization(organizationId));
    },

    async replaceScope(scope, plan, finish) {
      const outcome = await sql.begin(async (tx) => {
        const scopeSum = await lockScopeStates(tx, scope);
        const current = await readScopeModules(tx, scope);
        const replacement = await plan(current);
        const applied = await applyScopeReplacement(tx, scope, scopeSum, current, replacement);
        const result = await finish(tx, applied);
        return { applied, result };
      });
      const entries = outcome.applied.cacheEntries;
      if (entries.length > 0) await updateCache(() => cache.warm(entries));
      return outcome;
    },

    async warmCache() {
      let count = 0;
      const cursor = sql<ModuleRow[]>`
        select organization_id, path, content, content_hash, revision, created_at, updated_at
        from modules`.cursor(500);
      for await (const rows of cursor) {
        await cache.warm(
          rows.map((row) => ({
            scope: scopeOfRow(row.organization_id),
            path: row.path,
            pointer: pointerOf(row as unknown as Record<string, unknown>),
            content: row.content ?? "",
          })),
        );
        count += rows.length;
      }
      return count;
    },
  };

  async function resolveFromCache(
    organizationId: string,
    path: string,
  ): Promise<{ module: ModuleRecord; provenance: Provenance } | undefined> {
    let pointers: Awaited<ReturnType<ModuleCache["getPointers"]>>;
    try {
      pointers = await cache.getPointers(organizationId, path);
    } catch (error) {
      log.warn({ err: error }, "module cache read failed");
      return undefined;
    }
    const [own, global] = pointers;
    if (!own || !global) return undefined;
    const winner = own.hash ? own : global.hash ? global : undefined;
    if (!winner?.hash) return undefined; // let Postgres say not found (and whether the org exists)
    const content = await cache.getBlob(winner.hash).catch(() => undefined);
    if (content === undefined) return undefined;
    const provenance: Provenance = own.hash
      ? global.hash
        ? "override"
        : "organization"
      : "global";
    return {
      module: {
        scope: own.hash ? { kind: "organization", organizationId } : { kind: "global" },
        path,
        content,
        contentHash: winner.hash,
        sizeBytes: Buffer.byteLength(content, "utf8"),
        createdAt: new Date(winner.createdAt ?? 0),
        updatedAt: new Date(winner.updatedAt ?? 0),
      },
      provenance,
    };
  }
}
