import type { Logger } from "../log.js";
import { publishAndMark } from "./dispatch.js";
import type { ExecutionStore } from "./execution-store.js";
import type { JobQueue } from "./job-queue.js";

/** Stops the dispatch retry, waiting for a round in progress. */
export interface DispatchRetry {
  stop(): Promise<void>;
}

/**
 * Publishes, every `everyMs`, the queued executions whose job never reached JetStream: NATS
 * was unreachable when they started, or the control plane stopped between recording one and
 * publishing it. Without this they would stay queued forever. `olderThanMs` leaves starts
 * that are still publishing alone; a publish that did get through before is dropped by
 * JetStream as a duplicate (message id = execution id), so republishing is harmless. A round
 * stops at the first failure: NATS is still away, the next round tries again.
 */
export function startDispatchRetry(deps: {
  executions: ExecutionStore;
  queue: JobQueue;
  everyMs: number;
  olderThanMs: number;
  log: Logger;
}): DispatchRetry {
  let round: Promise<void> = Promise.resolve();
  const retry = async () => {
    for (const row of await deps.executions.undispatched(deps.olderThanMs, 500)) {
      try {
        await publishAndMark(deps, { id: row.id, organizationId: row.organization_id });
        deps.log.info({ executionId: row.id }, "deferred dispatch published");
      } catch (error) {
        deps.log.warn({ err: error, executionId: row.id }, "deferred dispatch failed");
        return;
      }
    }
  };
  const timer = setInterval(() => {
    round = round
      .then(retry)
      .catch((error: unknown) => deps.log.error({ err: error }, "dispatch retry failed"));
  }, deps.everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await round;
    },
  };
}
