import type { Sql, SqlOrTx } from "../db/postgres.js";
import { notFound } from "../errors.js";
import { type Scope, scopeOfRow } from "../scope.js";
import type { SkippedFile } from "./tree-plan.js";

export type SyncTrigger = "manual" | "schedule" | "webhook";
export type SyncStatus = "running" | "succeeded" | "failed";

/** Skipped files kept per report; the count says how many there were in all. */
export const maxSkippedInReport = 1000;

/** The report of one sync run. */
export interface GitSyncRecord {
  id: string;
  bindingId: string;
  scope: Scope;
  trigger: SyncTrigger;
  status: SyncStatus;
  commitBefore: string | null;
  commitAfter: string | null;
  added: string[];
  updated: string[];
  deleted: string[];
  unchangedCount: number;
  skipped: SkippedFile[];
  skippedCount: number;
  error: string | null;
  startedAt: Date;
  finishedAt: Date | null;
  /** Where this run sits in the newest-first history (exact start time as text, id). */
  position: [string, string];
}

/** What a finished run reports. */
export interface SyncOutcome {
  commitAfter: string | null;
  added: readonly string[];
  updated: readonly string[];
  deleted: readonly string[];
  unchangedCount: number;
  skipped: readonly SkippedFile[];
  error: string | null;
}

interface SyncRow {
  id: string;
  binding_id: string;
  organization_id: string | null;
  trigger: SyncTrigger;
  status: SyncStatus;
  commit_before: string | null;
  commit_after: string | null;
  added: string[];
  updated: string[];
  deleted: string[];
  unchanged_count: number;
  skipped: SkippedFile[];
  skipped_count: number;
  error: string | null;
  started_at: Date;
  started_at_text: string;
  finished_at: Date | null;
}

function toRecord(row: SyncRow): GitSyncRecord {
  return {
    id: row.id,
    bindingId: row.binding_id,
    scope: scopeOfRow(row.organization_id),
    trigger: row.trigger,
    status: row.status,
    commitBefore: row.commit_before,
    commitAfter: row.commit_after,
    added: row.added,
    updated: row.updated,
    deleted: row.deleted,
    unchangedCount: row.unchanged_count,
    skipped: row.skipped,
    skippedCount: row.skipped_count,
    error: row.error,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    position: [row.started_at_text, row.id],
  };
}

/** Sync runs of git bindings: started, finished (succeeded or failed), listed. */
export interface GitSyncStore {
  start(
    bindingId: string,
    trigger: SyncTrigger,
  ): Promise<{ id: string; commitBefore: string | null }>;
  /** Records the outcome; `tx` is the sync's own transaction when it succeeded. */
  finish(tx: SqlOrTx, id: string, status: SyncStatus, outcome: SyncOutcome): Promise<void>;
  /**
   * Runs left "running" by a control plane that stopped mid-sync become failed. Call only
   * while holding the binding's sync lock, when no run of it can be in flight.
   */
  failInterrupted(bindingId: string): Promise<number>;
  get(id: string): Promise<GitSyncRecord>;
  /** Several runs by id at once (those that exist). */
  getMany(ids: readonly string[]): Promise<Map<string, GitSyncRecord>>;
  latest(bindingId: string): Promise<GitSyncRecord | undefined>;
  list(
    bindingId: string,
    options: { before: [string, string] | undefined; limit: number },
  ): Promise<GitSyncRecord[]>;
}

/** Creates the sync-run store. */
export function createGitSyncStore(sql: Sql): GitSyncStore {
  return {
    async start(bindingId, trigger) {
      const [row] = await sql<{ id: string; commit_before: string | null }[]>`
        insert into git_syncs (binding_id, organization_id, trigger, status, commit_before)
        select id, organization_id, ${trigger}, 'running', last_commit from git_bindings where id = ${bindingId}
        returning id, commit_before`;
      if (!row) throw notFound(`git binding "${bindingId}" not found`);
      return { id: row.id, commitBefore: row.commit_before };
    },

    async finish(tx, id, status, outcome) {
      const skipped = outcome.skipped.slice(0, maxSkippedInReport);
      await tx`
        update git_syncs set status = ${status}, commit_after = ${outcome.commitAfter},
          added = ${outcome.added as string[]}::text[], updated = ${outcome.updated as string[]}::text[],
          deleted = ${outcome.deleted as string[]}::text[], unchanged_count = ${outcome.unchangedCount},
          skipped = ${tx.json(skipped as never)}, skipped_count = ${outcome.skipped.length},
          error = ${outcome.error}, finished_at = clock_timestamp()
        where id = ${id}`;
      await tx`update git_bindings set last_sync_id = ${id} where id = (select binding_id from git_syncs where id = ${id})`;
    },

    async failInterrupted(bindingId) {
      const rows = await sql`
        update git_syncs set status = 'failed', finished_at = clock_timestamp(),
          error = 'interrupted: the control plane stopped during this sync; nothing of it was applied'
        where binding_id = ${bindingId} and status = 'running'
        returning id`;
      return rows.length;
    },

    async get(id) {
      const [row] = await sql<
        SyncRow[]
      >`select *, started_at::text as started_at_text from git_syncs where id = ${id}`;
      if (!row) throw notFound(`git sync "${id}" not found`);
      return toRecord(row);
    },

    async getMany(ids) {
      if (ids.length === 0) return new Map();
      const rows = await sql<SyncRow[]>`
        select *, started_at::text as started_at_text from git_syncs where id = any(${ids as string[]}::uuid[])`;
      return new Map(rows.map((row) => [row.id, toRecord(row)]));
    },

    async latest(bindingId) {
      const [row] = await sql<SyncRow[]>`
        select *, started_at::text as started_at_text from git_syncs where binding_id = ${bindingId} order by started_at desc, id desc limit 1`;
      return row ? toRecord(row) : undefined;
    },

    async list(bindingId, options) {
      const rows = options.before
        ? await sql<SyncRow[]>`
            select *, started_at::text as started_at_text from git_syncs
            where binding_id = ${bindingId}
              and (started_at, id) < (${options.before[0]}::timestamptz, ${options.before[1]}::uuid)
            order by started_at desc, id desc limit ${options.limit}`
        : await sql<SyncRow[]>`
            select *, started_at::text as started_at_text from git_syncs where binding_id = ${bindingId}
            order by started_at desc, id desc limit ${options.limit}`;
      return rows.map(toRecord);
    },
  };
}
