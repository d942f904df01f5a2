import type { BootedSandbox, SandboxBoot } from "./sandbox-job.js";

/**
 * Sandboxes started ahead of their job, for jobs that repeat.
 *
 * Starting bubblewrap, Deno and the SDK is most of an execution's time (research/
 * deno-sandbox.md §4). When a workflow runs again soon for the same organization, with the
 * same effective tree, network and entry (its "boot"), the runner can start the next
 * sandbox while the current one runs; the next job then only sends its start message.
 * Still one process per execution: a prepared sandbox serves exactly one job of exactly
 * its boot and is discarded otherwise. Nothing of the job's is in it before its start
 * message (the SDK loads no workflow module before that), so preparing is safe; it costs
 * one idle Deno process (~30 MB) per prepared sandbox.
 *
 * Only repeating boots are prepared (seen within `repeatWindowMs`), so a stream of distinct
 * jobs wastes nothing; up to two per boot, at most `maxIdle` in all, each at most `idleMs`.
 */
export interface PreparedSandboxes {
  /** A prepared sandbox of this boot, alive, or undefined. */
  take(boot: SandboxBoot): BootedSandbox | undefined;
  /** Whether a prepared sandbox of this boot is waiting (without taking it). */
  has(boot: SandboxBoot): boolean;
  /**
   * Called as a job of `boot` starts: notes the boot and, when it repeats, starts the
   * sandbox for the next job of it with `start`.
   */
  anticipate(boot: SandboxBoot, start: () => Promise<BootedSandbox>): void;
  /** How many wait right now. */
  idle(): number;
  /**
   * Counts since start: jobs that found a prepared sandbox (`taken`) or none (`missed`),
   * sandboxes prepared, and those discarded unused (expired, evicted, died).
   */
  stats(): { taken: number; missed: number; prepared: number; discarded: number };
  /** Discards every prepared sandbox and stops preparing. */
  close(): Promise<void>;
}

export interface PreparedSandboxesOptions {
  /** Most sandboxes waiting at once (a runner's slots is a good value; 0 turns it off). */
  maxIdle: number;
  /** A prepared sandbox nobody took by then is discarded. */
  idleMs?: number;
  /** A boot is prepared for when it ran before within this window. */
  repeatWindowMs?: number;
  onError?: (error: unknown) => void;
}

interface Waiting {
  key: string;
  sandbox: BootedSandbox;
  timer: NodeJS.Timeout;
}

const rememberedBoots = 1000;

export function createPreparedSandboxes(options: PreparedSandboxesOptions): PreparedSandboxes {
  const idleMs = options.idleMs ?? 60_000;
  const repeatWindowMs = options.repeatWindowMs ?? 60_000;
  const waiting: Waiting[] = [];
  const lastSeen = new Map<string, number>();
  let preparing = 0;
  const preparingByKey = new Map<string, number>();
  let closed = false;
  const counts = { taken: 0, missed: 0, prepared: 0, discarded: 0 };

  const remove = (entry: Waiting) => {
    const index = waiting.indexOf(entry);
    if (index >= 0) waiting.splice(index, 1);
    clearTimeout(entry.timer);
  };
  const discard = (entry: Waiting) => {
    remove(entry);
    counts.discarded++;
    entry.sandbox.discard().catch((error: unknown) => options.onError?.(error));
  };

  const prepare = (key: string, start: () => Promise<BootedSandbox>) => {
    preparing++;
    preparingByKey.set(key, (preparingByKey.get(key) ?? 0) + 1);
    counts.prepared++;
    start()
      .then((sandbox) => {
        if (closed) return void sandbox.discard();
        const entry: Waiting = {
          key,
          sandbox,
          timer: setTimeout(() => discard(entry), idleMs).unref(),
        };
        waiting.push(entry);
      })
      .catch((error: unknown) => options.onError?.(error))
      .finally(() => {
        preparing--;
        const left = (preparingByKey.get(key) ?? 1) - 1;
        if (left > 0) preparingByKey.set(key, left);
        else preparingByKey.delete(key);
      });
  };

  return {
    take(boot) {
      const key = bootKey(boot);
      for (const entry of waiting.filter((w) => w.key === key)) {
        if (entry.sandbox.exited) {
          discard(entry);
          continue;
        }
        remove(entry);
        counts.taken++;
        return entry.sandbox;
      }
      counts.missed++;
      return undefined;
    },
    has(boot) {
      const key = bootKey(boot);
      return waiting.some((entry) => entry.key === key && !entry.sandbox.exited);
    },
    anticipate(boot, start) {
      if (closed || options.maxIdle <= 0) return;
      const key = bootKey(boot);
      const now = Date.now();
      const seen = lastSeen.get(key);
      lastSeen.delete(key);
      lastSeen.set(key, now);
      if (lastSeen.size > rememberedBoots) {
        lastSeen.delete(lastSeen.keys().next().value as string);
      }
      if (seen === undefined || now - seen > repeatWindowMs) return;
      // Two ahead (when there is room): each then has two jobs' time to come up, which one
      // job's time on a busy host often is not.
      const depth = Math.min(2, options.maxIdle);
      const mine = () =>
        waiting.filter((w) => w.key === key).length + (preparingByKey.get(key) ?? 0);
      while (mine() < depth) {
        // Room for it: the oldest waiting sandbox of another boot makes way.
        const other = waiting.find((w) => w.key !== key);
        if (waiting.length + preparing >= options.maxIdle && other) discard(other);
        if (waiting.length + preparing >= options.maxIdle) return;
        prepare(key, start);
      }
    },
    idle: () => waiting.length,
    stats: () => ({ ...counts }),
    async close() {
      closed = true;
      await Promise.all(
        waiting.splice(0).map((entry) => {
          clearTimeout(entry.timer);
          return entry.sandbox.discard().catch(() => {});
        }),
      );
    },
  };
}

/** Two jobs can share a prepared sandbox only when everything it was started with is equal. */
export function bootKey(boot: SandboxBoot): string {
  return JSON.stringify([
    boot.treeOwner,
    boot.view.fingerprint,
    boot.importMap,
    boot.entrySource,
    [...boot.network.workflowHosts].sort(),
    [...boot.network.organizationHosts].sort(),
  ]);
}
