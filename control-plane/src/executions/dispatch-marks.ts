import type { Logger } from "../log.js";
import type { ExecutionStore } from "./execution-store.js";

/** Records, in batches, that executions' jobs are stored in JetStream. */
export interface DispatchMarks {
  /** Marks the execution dispatched within `maxDelayMs` (with others started meanwhile). */
  add(id: string): void;
  /**
   * The execution was claimed, which recorded its dispatch too (a runner got its job): its
   * pending mark is dropped, and a batch left empty is no statement at all.
   */
  claimed(id: string): void;
  /** Writes what is pending now and waits for every write under way. */
  flush(): Promise<void>;
}

/**
 * The mark only keeps the dispatch retry from publishing a job again, and a job published
 * again is dropped by JetStream as a duplicate (message id = execution id, within a window far
 * longer than the retry's wait). So a start need not wait for its mark: marks gather for
 * `maxDelayMs` (or up to `maxBatch`) and go out in one UPDATE. A lost batch (database away,
 * process killed) costs only a duplicate publish.
 */
export function createDispatchMarks(deps: {
  executions: Pick<ExecutionStore, "markDispatched">;
  log: Logger;
  maxDelayMs: number;
  maxBatch?: number;
}): DispatchMarks {
  const maxBatch = deps.maxBatch ?? 500;
  let pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const writing = new Set<Promise<void>>();

  const write = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.size === 0) return;
    const ids = [...pending];
    pending = new Set();
    const done = deps.executions
      .markDispatched(ids)
      .catch((error: unknown) =>
        deps.log.warn(
          { err: error, executions: ids.length },
          "dispatch marks not written; the dispatch retry will publish those jobs again (dropped as duplicates)",
        ),
      )
      .finally(() => writing.delete(done));
    writing.add(done);
  };

  return {
    add(id) {
      pending.add(id);
      if (pending.size >= maxBatch) write();
      else if (!timer) {
        timer = setTimeout(write, deps.maxDelayMs);
        timer.unref();
      }
    },
    claimed(id) {
      pending.delete(id);
      if (pending.size === 0 && timer) {
        clearTimeout(timer);
        timer = undefined;
      }
    },
    async flush() {
      write();
      await Promise.all(writing);
    },
  };
}
