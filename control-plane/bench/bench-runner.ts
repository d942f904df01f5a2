import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobDispatchNames } from "@bifrost/proto";
import { createExecutorDeps } from "@bifrost/runner/execute";
import {
  type ControlPlaneClient,
  connectControlPlane,
  createJobHandler,
  startJobConsumer,
} from "@bifrost/runner/jobs";
import { createRunnerMetrics } from "@bifrost/runner/metrics";
import { connect } from "@nats-io/transport-node";

/**
 * When one execution passed each point on the runner, in performance.now() milliseconds
 * (this process's clock; the control plane runs in the same process).
 */
export interface ExecutionMarks {
  /** The control plane published the job (ExecutionJob.enqueued_at, wall clock converted). */
  enqueued?: number;
  /** The job reached the runner's handler. */
  delivered?: number;
  claim?: [number, number];
  /** Sandbox process duration as the runner measured it (cgroup setup to teardown). */
  sandboxMs?: number;
  /** ReportExecutionEvents calls: how many, and the last one (the flush after the run). */
  reports: number;
  lastReport?: [number, number];
  complete?: [number, number];
  /** The handler returned (the job is acked right after). */
  handled?: number;
}

/** One runner in this process: the real job consumer, handler and sandbox, instrumented. */
export interface BenchRunner {
  capacity: number;
  /** Marks by execution id. */
  marks: ReadonlyMap<string, ExecutionMarks>;
  /** GetExecutionModules calls so far: one per tree this runner had to materialize. */
  moduleFetches(): number;
  /** Messages this runner's NATS connection has sent and received so far. */
  natsMessages(): { out: number; in: number };
  /** How many executions' sandboxes were started early, prepared, or after the claim. */
  started(): ReadonlyMap<string, number>;
  /** Anything the consumer or handler reported as an error (the bench fails on any). */
  errors: readonly unknown[];
  stop(): Promise<void>;
}

/** Converts a wall-clock instant to this process's performance.now() scale. */
export const toMonotonic = (date: Date) => date.getTime() - performance.timeOrigin;

/**
 * Starts a runner as runner/src/main.ts does (`startJobConsumer` + `createJobHandler` +
 * `connectControlPlane` + `createExecutorDeps`) with a work dir of its own, and records when
 * each execution passes each step: the control-plane client and the handler are wrapped,
 * the sandbox duration comes from the handler's own "execution finished" log.
 */
export async function startBenchRunner(options: {
  address: string;
  natsUrl: string;
  names: JobDispatchNames;
  runnerKey: string;
  capacity: number;
  /** Sandboxes prepared ahead of repeating jobs, as the runner does by default (true). */
  prepared?: boolean;
}): Promise<BenchRunner> {
  const marks = new Map<string, ExecutionMarks>();
  const started = new Map<string, number>();
  const errors: unknown[] = [];
  const tokens = new Map<string, string>();
  const mark = (executionId: string) => {
    let entry = marks.get(executionId);
    if (!entry) {
      entry = { reports: 0 };
      marks.set(executionId, entry);
    }
    return entry;
  };
  const byToken = (token: string) => mark(tokens.get(token) ?? "unknown");

  const workDir = await mkdtemp(join(tmpdir(), "bifrost-bench-runner-"));
  // The sandbox runs as another uid, which must be able to reach the trees below it.
  await chmod(workDir, 0o711);
  const client = connectControlPlane(options.address, options.runnerKey);
  let moduleFetches = 0;
  const timed: ControlPlaneClient = {
    ...client,
    async getExecutionModules(request) {
      moduleFetches++;
      return client.getExecutionModules(request);
    },
    async claimExecution(request) {
      const start = performance.now();
      const response = await client.claimExecution(request);
      mark(request.executionId).claim = [start, performance.now()];
      tokens.set(response.executionToken, request.executionId);
      return response;
    },
    async reportExecutionEvents(request) {
      const start = performance.now();
      const response = await client.reportExecutionEvents(request);
      const entry = byToken(request.executionToken);
      entry.reports++;
      entry.lastReport = [start, performance.now()];
      return response;
    },
    async completeExecution(request) {
      const start = performance.now();
      const response = await client.completeExecution(request);
      byToken(request.executionToken).complete = [start, performance.now()];
      return response;
    },
  };
  const nats = await connect({ servers: options.natsUrl, name: "bifrost-bench-runner" });
  const executor = await createExecutorDeps({
    workDir,
    fetchContent: async () => {
      throw new Error("content is fetched per execution");
    },
    logger: { warn: () => {} },
    // As the runner's main.ts configures it by default: one of each per slot.
    sandboxSpares: options.capacity,
    preparedSandboxes: options.prepared === false ? 0 : options.capacity,
  });
  const handle = createJobHandler({
    client: timed,
    executor,
    runnerName: "bench-runner",
    // Counted as the runner process counts them (metrics are on by default).
    metrics: createRunnerMetrics({ capacity: options.capacity, busy: () => 0 }),
    log: {
      info(fields, message) {
        if (message === "execution finished" && typeof fields.executionId === "string") {
          mark(fields.executionId).sandboxMs = Number(fields.durationMs);
          const how = String(fields.sandboxStarted);
          started.set(how, (started.get(how) ?? 0) + 1);
        }
      },
      error: (fields) => errors.push(fields.err ?? fields),
    },
  });
  const consumer = await startJobConsumer({
    nc: nats,
    names: options.names,
    capacity: options.capacity,
    progressEveryMs: 5_000,
    handle: async (delivery) => {
      const entry = mark(delivery.job.executionId);
      entry.delivered = performance.now();
      if (delivery.job.enqueuedAt) entry.enqueued = toMonotonic(delivery.job.enqueuedAt);
      const disposition = await handle(delivery);
      entry.handled = performance.now();
      return disposition;
    },
    onError: (error) => errors.push(error),
  });
  return {
    capacity: options.capacity,
    marks,
    moduleFetches: () => moduleFetches,
    natsMessages: () => {
      const stats = nats.stats();
      return { out: stats.outMsgs, in: stats.inMsgs };
    },
    started: () => started,
    errors,
    async stop() {
      await consumer.stop();
      await executor.prepared?.close();
      await executor.host.close();
      client.close();
      await nats.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
