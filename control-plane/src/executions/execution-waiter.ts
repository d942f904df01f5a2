import type { Sql } from "../db/postgres.js";
import { executionDoneChannel } from "./execution-store.js";

/** Waits for executions to end, woken by PostgreSQL NOTIFY (any replica's completion). */
export interface ExecutionWaiter {
  /** Resolves when the execution is announced done, or after timeoutMs (whichever first). */
  wait(id: string, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Subscribes once to the completion channel and fans notifications out to waiters. */
export async function createExecutionWaiter(sql: Sql): Promise<ExecutionWaiter> {
  const waiting = new Map<string, Set<() => void>>();
  const subscription = await sql.listen(executionDoneChannel, (id) => {
    for (const wake of waiting.get(id) ?? []) wake();
  });
  return {
    wait(id, timeoutMs) {
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
