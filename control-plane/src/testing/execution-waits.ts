import { type Execution, ExecutionStatus } from "@bifrost/proto";
import type { ApiClients } from "./grpc-clients.js";

/**
 * Polls GetExecution until `check` holds for the execution, and returns it; fails after
 * `withinMs`, with the execution as last read.
 */
export async function waitForExecution(
  api: ApiClients,
  id: string,
  check: (execution: Execution) => boolean,
  withinMs = 20_000,
): Promise<Execution> {
  const deadline = Date.now() + withinMs;
  let last: Execution | undefined;
  while (Date.now() < deadline) {
    last = (await api.executions.getExecution({ id })).execution;
    if (last && check(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `execution ${id} did not reach the expected state; last: ${JSON.stringify(last)}`,
  );
}

/** Whether an execution has ended: neither queued nor running. */
export const hasEnded = (execution: Execution): boolean =>
  execution.status !== ExecutionStatus.EXECUTION_STATUS_QUEUED &&
  execution.status !== ExecutionStatus.EXECUTION_STATUS_RUNNING;

/** Polls GetExecution until the execution has ended, and returns it. */
export const waitForEnd = (api: ApiClients, id: string, withinMs?: number) =>
  waitForExecution(api, id, hasEnded, withinMs);
