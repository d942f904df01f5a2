import { rm } from "node:fs/promises";
import { join } from "node:path";
import { type Actor, recordAudit } from "../audit/audit-log.js";
import type { Sql, SqlOrTx } from "../db/postgres.js";
import { AppError, failedPrecondition, notFound } from "../errors.js";
import type { Logger } from "../log.js";
import type { ModuleStore } from "../modules/module-store.js";
import { scopeOrganizationId } from "../scope.js";
import type { GitBindingStore } from "./binding-store.js";
import { type GitMirror, openGitMirror } from "./git-client.js";
import { assertPublicHost, parseRepositoryUrl, type RepositoryUrlRules } from "./repository-url.js";
import type { GitSyncRecord, GitSyncStore, SyncOutcome, SyncTrigger } from "./sync-store.js";
import { blobsToRead, classifyTree, planReplacement, type SkippedFile } from "./tree-plan.js";

/** Limits and rules of every sync. */
export interface GitSyncSettings extends RepositoryUrlRules {
  /** Where per-binding mirrors live. */
  workDir: string;
  /** Longest a git process may go without output. */
  timeoutMs: number;
  /** Most tree entries a repository may have. */
  maxFiles: number;
  /** Largest file that becomes a module. */
  moduleMaxBytes: number;
}

/** Runs syncs of git bindings, at most one per binding at a time across replicas. */
export interface GitSyncer {
  /**
   * Syncs the binding and returns the run's report. When a sync of it is already under way
   * (here or on another replica) no second one starts: the caller gets that run's report and
   * `joined`. Polls that find the bound commit unchanged record nothing (`sync` undefined).
   */
  sync(
    bindingId: string,
    trigger: SyncTrigger,
    actor: Actor,
  ): Promise<{ sync: GitSyncRecord | undefined; joined: boolean }>;
}

// Advisory lock class of binding syncs ("git\0"); the second key is hashtext(binding id).
const syncLockClass = 0x67697400;

/** Test seams: a place to stop or break a sync just before its transaction commits. */
export interface GitSyncHooks {
  beforeCommit?(tx: SqlOrTx, bindingId: string): Promise<void>;
}

/**
 * Creates the syncer. A sync fetches the branch into the binding's bare mirror, lists the
 * commit's tree, and in one transaction (the scope locked) reads only the blobs whose module
 * was not written from them, writes what changed, deletes what is gone, records the commit,
 * the report and an audit event. Nothing is applied unless all of it commits; the module
 * cache is updated after the commit and discovery is woken for the written modules. Runners
 * see the change through the scope's fingerprint, which the writes move.
 */
export function createGitSyncer(deps: {
  sql: Sql;
  modules: ModuleStore;
  bindings: GitBindingStore;
  syncs: GitSyncStore;
  log: Logger;
  settings: GitSyncSettings;
  onModulesChanged: () => void;
  hooks?: GitSyncHooks;
}): GitSyncer {
  const { sql, modules, bindings, syncs, log, settings } = deps;
  const inFlight = new Map<string, Promise<GitSyncRecord | undefined>>();

  async function openMirror(bindingId: string): Promise<GitMirror> {
    const dir = join(settings.workDir, "git", bindingId);
    // A control plane that died mid-fetch can leave git's lock files behind; holding the
    // binding's sync lock means no git process of ours is using the mirror now.
    for (const lock of ["shallow.lock", "packed-refs.lock", "refs/bifrost/synced.lock"]) {
      await rm(join(dir, "repo.git", lock), { force: true });
    }
    return openGitMirror(dir, settings);
  }

  async function fetchCommit(
    mirror: GitMirror,
    bindingId: string,
    url: string,
    branch: string,
  ): Promise<string> {
    const repository = parseRepositoryUrl(url, settings);
    await assertPublicHost(repository, settings);
    const credential = await bindings.credential(bindingId);
    return mirror.fetch({ url: repository.url, branch, credential });
  }

  async function runSync(
    bindingId: string,
    trigger: SyncTrigger,
    actor: Actor,
  ): Promise<GitSyncRecord | undefined> {
    const interrupted = await syncs.failInterrupted(bindingId);
    if (interrupted > 0) log.warn({ bindingId, interrupted }, "git sync runs were interrupted");
    const binding = await bindings.get(bindingId);
    const mirror = await openMirror(bindingId);
    let commit: string | undefined;
    let pollFailure: { error: unknown } | undefined;
    if (trigger === "schedule") {
      // A poll that finds nothing new leaves no record; one that fails is recorded below with
      // the error it got, without asking the remote a second time (a remote refusing our
      // credential would count each try against it).
      try {
        commit = await fetchCommit(mirror, bindingId, binding.repositoryUrl, binding.branch);
      } catch (error) {
        pollFailure = { error };
      }
      if (commit !== undefined && commit === binding.lastCommit) return undefined;
    }
    const run = await syncs.start(bindingId, trigger);
    let changed = false;
    try {
      if (pollFailure) throw pollFailure.error;
      commit ??= await fetchCommit(mirror, bindingId, binding.repositoryUrl, binding.branch);
      const entries = await mirror.listTree(commit);
      if (entries.length > settings.maxFiles) {
        throw failedPrecondition(
          `commit ${commit} has ${entries.length} files; at most ${settings.maxFiles} are synced`,
        );
      }
      const tree = classifyTree(entries, {
        subfolder: binding.subfolder,
        maxBytes: settings.moduleMaxBytes,
      });
      let unchanged = 0;
      let skipped: SkippedFile[] = tree.skipped;
      const syncedCommit = commit;
      await modules.replaceScope(
        binding.scope,
        async (current) => {
          const contents = await mirror.readBlobs(blobsToRead(tree.candidates, current));
          const plan = planReplacement(tree.candidates, current, contents);
          unchanged = plan.unchanged;
          skipped = [...tree.skipped, ...plan.skipped];
          return plan.replacement;
        },
        async (tx, applied) => {
          const [still] = await tx`
            update git_bindings set last_commit = ${syncedCommit}, last_synced_at = now(), updated_at = now()
            where id = ${bindingId} returning id`;
          if (!still) throw failedPrecondition("the binding was removed during the sync");
          const outcome: SyncOutcome = {
            commitAfter: syncedCommit,
            added: applied.added,
            updated: applied.updated,
            deleted: applied.deleted,
            unchangedCount: unchanged,
            skipped,
            error: null,
          };
          await syncs.finish(tx, run.id, "succeeded", outcome);
          await recordAudit(tx, actor, {
            organizationId: scopeOrganizationId(binding.scope),
            action: "git.sync",
            targetType: "git_binding",
            target: bindingId,
            details: {
              syncId: run.id,
              trigger,
              commitBefore: run.commitBefore,
              commitAfter: syncedCommit,
              added: applied.added.length,
              updated: applied.updated.length,
              deleted: applied.deleted.length,
              skipped: skipped.length,
            },
          });
          await deps.hooks?.beforeCommit?.(tx, bindingId);
          changed = applied.added.length + applied.updated.length + applied.deleted.length > 0;
        },
      );
    } catch (error) {
      changed = false;
      const message =
        error instanceof AppError ? error.message : `sync failed: ${(error as Error).message}`;
      if (!(error instanceof AppError)) log.error({ err: error, bindingId }, "git sync failed");
      await syncs.finish(sql, run.id, "failed", {
        commitAfter: commit ?? null,
        added: [],
        updated: [],
        deleted: [],
        unchangedCount: 0,
        skipped: [],
        error: message,
      });
    }
    if (changed) deps.onModulesChanged();
    return syncs.get(run.id).catch(() => {
      throw notFound(`git binding "${bindingId}" was removed during the sync`);
    });
  }

  // Holds the binding's advisory lock (on a connection of its own, released with it if this
  // process dies) for the whole sync, so replicas never sync one binding at once.
  async function syncLocked(
    bindingId: string,
    trigger: SyncTrigger,
    actor: Actor,
  ): Promise<{ sync: GitSyncRecord | undefined; joined: boolean }> {
    const conn = await sql.reserve();
    try {
      const [row] = await conn<{ locked: boolean }[]>`
        select pg_try_advisory_lock(${syncLockClass}, hashtext(${bindingId})) as locked`;
      if (row?.locked) {
        try {
          return { sync: await runSync(bindingId, trigger, actor), joined: false };
        } finally {
          await conn`select pg_advisory_unlock(${syncLockClass}, hashtext(${bindingId}))`;
        }
      }
      // Another replica is syncing it: wait for that run and report it.
      const deadline = Date.now() + settings.timeoutMs * 4;
      while (Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const [again] = await conn<{ locked: boolean }[]>`
          select pg_try_advisory_lock(${syncLockClass}, hashtext(${bindingId})) as locked`;
        if (again?.locked) {
          await conn`select pg_advisory_unlock(${syncLockClass}, hashtext(${bindingId}))`;
          break;
        }
      }
      return { sync: await syncs.latest(bindingId), joined: true };
    } finally {
      conn.release();
    }
  }

  return {
    async sync(bindingId, trigger, actor) {
      const running = inFlight.get(bindingId);
      if (running) return { sync: await running, joined: true };
      const work = syncLocked(bindingId, trigger, actor);
      const report = work.then((r) => r.sync);
      inFlight.set(bindingId, report);
      try {
        return await work;
      } finally {
        inFlight.delete(bindingId);
        report.catch(() => {}); // joined callers observe the error themselves
      }
    },
  };
}
