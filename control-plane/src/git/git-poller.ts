import { systemActor } from "../audit/audit-log.js";
import type { Logger } from "../log.js";
import type { GitBindingStore } from "./binding-store.js";
import type { GitSyncer } from "./git-sync.js";

/** The poll schedule of git bindings. */
export interface GitPoller {
  /** Claims and syncs every binding whose poll is due; returns how many it synced. */
  tick(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Every `intervalMs`, claims the bindings whose poll interval has elapsed (skip-locked, so
 * each due binding is claimed by one replica, and its next poll moves forward first) and
 * syncs them one after another. A poll that finds the same commit records nothing.
 */
export function startGitPoller(deps: {
  bindings: GitBindingStore;
  syncer: GitSyncer;
  log: Logger;
  intervalMs: number;
  batchSize?: number;
}): GitPoller {
  let running: Promise<number> | undefined;

  async function tick(): Promise<number> {
    const due = await deps.bindings.claimDuePolls(deps.batchSize ?? 10);
    for (const id of due) {
      try {
        await deps.syncer.sync(id, "schedule", systemActor);
      } catch (error) {
        deps.log.warn({ err: error, bindingId: id }, "scheduled git sync failed");
      }
    }
    return due.length;
  }

  const timer = setInterval(() => {
    if (running) return;
    running = tick()
      .catch((error: unknown) => {
        deps.log.error({ err: error }, "git poll failed");
        return 0;
      })
      .finally(() => {
        running = undefined;
      });
  }, deps.intervalMs);
  timer.unref();

  return {
    tick,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
