import type { SandboxBootHint } from "@bifrost/proto";
import type { Logger } from "../log.js";
import type { DispatchMarks } from "./dispatch-marks.js";
import type {
  ExecutionRecord,
  ExecutionSnapshot,
  ExecutionStatus,
  ExecutionStore,
} from "./execution-store.js";
import { terminalStatuses } from "./execution-store.js";
import type { ExecutionWaiter } from "./execution-waiter.js";
import type { JobQueue } from "./job-queue.js";

/** What starting and awaiting an execution needs. */
export interface DispatchDeps {
  executions: ExecutionStore;
  queue: JobQueue;
  /** Where a published job's execution is marked dispatched, in batches. */
  marks: DispatchMarks;
  waiter: ExecutionWaiter;
  log: Logger;
}

/**
 * Publishes a recorded execution's job. When NATS is unreachable (restarting, say) the
 * execution stays queued and the dispatch retry publishes it once NATS is back; a publish
 * that did get through is dropped there as a duplicate (the message id is the execution id).
 */
export async function dispatchExecution(
  deps: DispatchDeps,
  record: ExecutionRecord,
  bootHint?: SandboxBootHint,
) {
  try {
    await deps.queue.publish({
      executionId: record.id,
      organizationId: record.organizationId,
      ...(bootHint && { bootHint }),
    });
    deps.marks.add(record.id);
  } catch (error) {
    deps.log.warn({ err: error, executionId: record.id }, "dispatch deferred");
  }
}

/**
 * Publishes a recorded execution's job and records its dispatch in a statement of its own:
 * for the starts outside an RPC (the dispatch retry, schedules), rare enough to need no batch
 * of marks (`dispatchExecution`). Throws when NATS is away; the execution then stays queued
 * and undispatched, for the dispatch retry.
 */
export async function publishAndMark(
  deps: { queue: Pick<JobQueue, "publish">; executions: Pick<ExecutionStore, "markDispatched"> },
  execution: { id: string; organizationId: string },
): Promise<void> {
  await deps.queue.publish({ executionId: execution.id, organizationId: execution.organizationId });
  await deps.executions.markDispatched([execution.id]);
}

/**
 * Waits until the execution ends or `deadline` (epoch ms) passes, and returns what `read`
 * gives then (the record, say): terminal by `statusOf`, or still queued/running when the
 * deadline passed.
 */
export async function awaitExecution<T>(
  waiter: ExecutionWaiter,
  id: string,
  deadline: number,
  read: () => Promise<T>,
  statusOf: (value: T) => ExecutionStatus,
  /** What `read` would return, from the execution as handed over by its completion. */
  fromSnapshot?: (snapshot: ExecutionSnapshot) => T,
): Promise<T> {
  // Wait first, then read: the waiter remembers an execution that ended before the wait
  // began. A wake-up that is missed (LISTEN reconnecting) costs at most a second, since every
  // wait ends within one and is followed by a read. An execution this replica completed is
  // handed over as it ended, and needs no read.
  for (;;) {
    const handed = await waiter.wait(id, Math.max(0, Math.min(1000, deadline - Date.now())));
    const current = handed && fromSnapshot ? fromSnapshot(handed) : await read();
    if (terminalStatuses.has(statusOf(current)) || Date.now() >= deadline) return current;
  }
}
