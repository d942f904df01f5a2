import type { Sql } from "../db/postgres.js";
import { type ExecutionSnapshot, executionDoneChannel } from "./execution-store.js";

/** Waits for executions to end, woken by PostgreSQL NOTIFY (any replica's completion). */
export interface ExecutionWaiter {
  /**
   * Resolves when the execution is announced done (or was, within the last minute), or after
   * timeoutMs, whichever comes first: with the execution as it ended when this replica
   * completed it and handed it over, else with nothing (the caller reads it).
   */
  wait(id: string, timeoutMs: number): Promise<ExecutionSnapshot | undefined>;
  /** Someone on this replica waits for this execution now. */
  waitingFor(id: string): boolean;
  /**
   * Runs `complete`, this replica's completion of execution `id`, and wakes its waiters here
   * with the execution as the completing statement returned it, which saves each a read. Its
   * announcement, which may arrive before the statement's answer, is held until then (and
   * is what wakes them if `complete` returns nothing or fails).
   */
  completing(
    id: string,
    complete: () => Promise<ExecutionSnapshot | undefined>,
  ): Promise<ExecutionSnapshot | undefined>;
  close(): Promise<void>;
}

/** Executions announced done are remembered this long, so a wait that starts late returns at once. */
const rememberDoneMs = 60_000;
const rememberDoneMax = 10_000;

/**
 * Subscribes once to the completion channel and fans notifications out to waiters. An
 * execution announced done before anyone waited for it is remembered for a minute: a caller
 * can wait first and read after, one read per execution instead of one before and one after.
 */
export async function createExecutionWaiter(sql: Sql): Promise<ExecutionWaiter> {
  const waiting = new Map<string, Set<(snapshot?: ExecutionSnapshot) => void>>();
  const done = new Map<string, number>();
  const announced = (id: string, snapshot?: ExecutionSnapshot) => {
    const now = Date.now();
    done.delete(id);
    done.set(id, now);
    for (const [oldest, at] of done) {
      if (done.size <= rememberDoneMax && now - at < rememberDoneMs) break;
      done.delete(oldest);
    }
    for (const wake of waiting.get(id) ?? []) wake(snapshot);
  };
  // Executions this replica is completing, and whether their announcement came meanwhile.
  const completing = new Map<string, { announced: boolean }>();
  const subscription = await sql.listen(executionDoneChannel, (id) => {
    const held = completing.get(id);
    if (held) held.announced = true;
    else announced(id);
  });
  return {
    wait(id, timeoutMs) {
      if (done.has(id)) return Promise.resolve(undefined);
      return new Promise<ExecutionSnapshot | undefined>((resolve) => {
        const set = waiting.get(id) ?? new Set();
        waiting.set(id, set);
        const done = (snapshot?: ExecutionSnapshot) => {
          clearTimeout(timer);
          set.delete(done);
          if (set.size === 0) waiting.delete(id);
          resolve(snapshot);
        };
        const timer = setTimeout(done, timeoutMs);
        set.add(done);
      });
    },
    waitingFor: (id) => waiting.has(id),
    async completing(id, complete) {
      // A second completion of the same execution at once (a retried call) is not held.
      if (completing.has(id)) return complete();
      const held = { announced: false };
      completing.set(id, held);
      let snapshot: ExecutionSnapshot | undefined;
      try {
        snapshot = await complete();
        return snapshot;
      } finally {
        completing.delete(id);
        if (snapshot) announced(id, snapshot);
        else if (held.announced) announced(id);
      }
    },
    async close() {
      await subscription.unlisten();
    },
  };
}
