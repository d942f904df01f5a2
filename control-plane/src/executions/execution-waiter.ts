import type { Sql } from "../db/postgres.js";
import { executionDoneChannel } from "./execution-store.js";

/** Waits for executions to end, woken by PostgreSQL NOTIFY (any replica's completion). */
export interface ExecutionWaiter {
  /**
   * Resolves when the execution is announced done (or was, within the last minute), or after
   * timeoutMs, whichever comes first.
   */
  wait(id: string, timeoutMs: number): Promise<void>;
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
  const waiting = new Map<string, Set<() => void>>();
  const done = new Map<string, number>();
  const subscription = await sql.listen(executionDoneChannel, (id) => {
    const now = Date.now();
    done.delete(id);
    done.set(id, now);
    for (const [oldest, at] of done) {
      if (done.size <= rememberDoneMax && now - at < rememberDoneMs) break;
      done.delete(oldest);
    }
    for (const wake of waiting.get(id) ?? []) wake();
  });
  return {
    wait(id, timeoutMs) {
      if (done.has(id)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const set = waiting.get(id) ?? new Set();
        waiting.set(id, set);
        const done = () => {
          clearTimeout(timer);
          set.delete(done);
          if (set.size === 0) waiting.delete(id);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        set.add(done);
      });
    },
    async close() {
      await subscription.unlisten();
    },
  };
}
