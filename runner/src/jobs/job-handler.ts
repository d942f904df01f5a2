import { existsSync } from "node:fs";
import { join } from "node:path";
import { type ExecutionJob, ExecutionKind, ExecutionStatus } from "@bifrost/proto";
import { type ServiceError, status } from "@grpc/grpc-js";
import type { ExecutionServices, LogLevel } from "../channel/sdk-channel.js";
import type { ControlPlaneClient } from "../control-plane-client.js";
import type { JobDelivery, JobDisposition } from "../dispatch/job-consumer.js";
import {
  bootSandboxJob,
  type EarlySandbox,
  type ExecutionOutcome,
  type ExecutorDeps,
  executeWorkflow,
  executionBoot,
} from "../execute/index.js";
import type { RunnerMetrics } from "../metrics/runner-metrics.js";
import { validateNetworkHost } from "../sandbox/network-policy.js";

/** Why a declared host is refused, or undefined when it is fine. */
function hostProblem(host: string): string | undefined {
  try {
    validateNetworkHost(host);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Starts the job's sandbox from its boot hint, ahead of the claim: only when the hint names a
 * tree this runner has and no sandbox of that boot is prepared already. Nothing is sent to
 * it before the claim confirms the same boot (executeWorkflow).
 */
function startEarly(executor: ExecutorDeps, job: ExecutionJob): EarlySandbox | undefined {
  const hint = job.bootHint;
  if (!hint?.viewFingerprint || !hint.modulePath) return undefined;
  if (!existsSync(join(executor.trees.root, job.organizationId, hint.viewFingerprint))) {
    return undefined;
  }
  let importMap: { imports: Record<string, string> };
  try {
    importMap = JSON.parse(hint.importMapJson) as { imports: Record<string, string> };
  } catch {
    return undefined;
  }
  const boot = executionBoot({
    organization: { id: job.organizationId },
    workflow: { name: hint.workflow, module: hint.modulePath, network: hint.network },
    dataProvider: hint.kind === ExecutionKind.EXECUTION_KIND_DATA_PROVIDER,
    view: { fingerprint: hint.viewFingerprint, entries: [] },
    importMap,
    organizationHosts: hint.organizationHosts,
  });
  if (executor.prepared?.has(boot)) return undefined;
  const sandbox = bootSandboxJob(executor, boot);
  sandbox.catch(() => {});
  return { boot, sandbox };
}

function discardEarly(early: EarlySandbox | undefined): void {
  early?.sandbox.then((sandbox) => sandbox.discard()).catch(() => {});
}

/** Logs a runner emits about itself (never workflow output). */
export interface RunnerLog {
  info(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

const statusOf: Record<ExecutionOutcome["status"], ExecutionStatus> = {
  succeeded: ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
  failed: ExecutionStatus.EXECUTION_STATUS_FAILED,
  timed_out: ExecutionStatus.EXECUTION_STATUS_TIMED_OUT,
  cancelled: ExecutionStatus.EXECUTION_STATUS_CANCELLED,
};

const flushEveryMs = 200;
const modulesPerCall = 1000;

/**
 * Turns a job delivery into an execution: claim it (an ended execution is just acknowledged),
 * fetch the organization's tree if this runner has not materialized that fingerprint yet,
 * run it in the sandbox with SDK calls relayed to the control plane under the execution
 * token, stream logs and checkpoints, stop it if cancellation is requested, and record the
 * outcome. The job is acknowledged only once the outcome is recorded, so a runner that dies
 * leaves the job to be redelivered as the next attempt.
 */
export function createJobHandler(deps: {
  client: ControlPlaneClient;
  executor: ExecutorDeps;
  runnerName: string;
  log: RunnerLog;
  /** Counts outcomes and timings for the runner's metrics endpoint, when it has one. */
  metrics?: RunnerMetrics;
}): (delivery: JobDelivery) => Promise<JobDisposition> {
  const { client } = deps;
  // The sandbox starts while the claim is on its way, when the job says how and the tree is
  // here; executeWorkflow takes it over (using it only if the claim's boot is the same), and
  // on every other way out it is discarded.
  return async ({ job, attempt }) => {
    const early = startEarly(deps.executor, job);
    const handover = { done: false };
    try {
      return await handle(job, attempt, early, handover, performance.now());
    } catch (error) {
      deps.metrics?.handlerFailed();
      throw error;
    } finally {
      if (!handover.done) discardEarly(early);
    }
  };

  async function handle(
    job: ExecutionJob,
    attempt: number,
    early: EarlySandbox | undefined,
    handover: { done: boolean },
    delivered: number,
  ): Promise<JobDisposition> {
    const claim = await client.claimExecution({
      executionId: job.executionId,
      attempt,
      runnerName: deps.runnerName,
    });
    if (!claim.claimed) {
      deps.metrics?.notClaimed();
      return { kind: "ack" };
    }
    const token = claim.executionToken;
    const log = { executionId: job.executionId, organizationId: claim.organizationId, attempt };
    deps.log.info(log, "execution claimed");

    // The tree's entries and contents are fetched only when this fingerprint's tree is not on
    // disk yet; an existing tree is reused as it is.
    const contents = new Map<string, string>();
    let tree = {
      fingerprint: claim.viewFingerprint,
      entries: [] as Array<{ path: string; contentHash: string }>,
      importMapJson: claim.importMapJson,
    };
    if (!existsSync(join(deps.executor.trees.root, claim.organizationId, claim.viewFingerprint))) {
      tree = await client.getExecutionView({ executionToken: token });
      const hashes = [...new Set(tree.entries.map((e) => e.contentHash))];
      for (let i = 0; i < hashes.length; i += modulesPerCall) {
        const batch = await client.getExecutionModules({
          executionToken: token,
          contentHashes: hashes.slice(i, i + modulesPerCall),
        });
        for (const [hash, content] of Object.entries(batch.contents)) contents.set(hash, content);
      }
    }
    const executor: ExecutorDeps = {
      ...deps.executor,
      trees: {
        ...deps.executor.trees,
        fetchContent: async (hash) => {
          const content = contents.get(hash);
          if (content === undefined)
            throw new Error(`the control plane sent no content for ${hash}`);
          return content;
        },
      },
    };

    const cancel = new AbortController();
    let logs: Array<{
      sequence: string;
      time: Date;
      level: string;
      message: string;
      data: unknown;
    }> = [];
    let checkpoints: Array<{ name: string; data: unknown; time: Date }> = [];
    const flush = async () => {
      if (logs.length === 0 && checkpoints.length === 0) {
        const { cancelRequested } = await client.reportExecutionEvents({
          executionToken: token,
          logs: [],
          checkpoints: [],
        });
        if (cancelRequested) cancel.abort();
        return;
      }
      const batch = { logs, checkpoints };
      logs = [];
      checkpoints = [];
      const { cancelRequested } = await client.reportExecutionEvents({
        executionToken: token,
        ...batch,
      });
      if (cancelRequested) cancel.abort();
    };
    let flushing: Promise<void> = Promise.resolve();
    const ticker = setInterval(() => {
      flushing = flushing
        .then(flush)
        .catch((error: unknown) => deps.log.error({ ...log, err: error }, "event flush failed"));
    }, flushEveryMs);

    const remote = async (method: string, name: string, value?: unknown) =>
      client.executionCall({ executionToken: token, method, name, value });
    const services: ExecutionServices = {
      getConfig: async (key) => remote("config.get", key),
      getSecret: async (name) => {
        const answer = await remote("secrets.get", name);
        return answer.found ? { found: true, value: String(answer.value) } : { found: false };
      },
      getVariable: async (name) => remote("variables.get", name),
      setVariable: async (name, value) => {
        await remote("variables.set", name, value);
      },
      log: (entry: { level: LogLevel; message: string; data?: unknown }) => {
        logs.push({
          sequence: "0",
          time: new Date(),
          level: entry.level,
          message: entry.message,
          data: entry.data,
        });
      },
      checkpoint: (entry) => {
        checkpoints.push({ name: entry.name, data: entry.data, time: new Date() });
      },
    };

    /**
     * Sends the outcome (`send`); false when the control plane refused it because this
     * attempt's token no longer counts: the execution has ended without it (failed as lost,
     * or an earlier try of this very call went through and its answer was lost in a
     * restart). A redelivery would find nothing to claim, so the job ends here either way.
     */
    const recordOutcome = (send: () => Promise<unknown>): Promise<boolean> =>
      send().then(
        () => true,
        (error: Partial<ServiceError>) => {
          if (error.code !== status.UNAUTHENTICATED) throw error;
          deps.log.info(
            { ...log, err: error },
            "outcome not recorded: the execution had already ended",
          );
          return false;
        },
      );

    let outcome: ExecutionOutcome;
    try {
      // A host the runner refuses is the configuration's fault, not the runner's: fail the
      // execution naming it instead of retrying on another runner.
      const refused = [...claim.network, ...claim.organizationHosts].map(hostProblem).find(Boolean);
      if (refused) {
        await recordOutcome(() =>
          client.completeExecution({
            executionToken: token,
            executionId: job.executionId,
            status: ExecutionStatus.EXECUTION_STATUS_FAILED,
            result: undefined,
            error: {
              name: "NetworkPolicyError",
              message: refused,
              stack: "",
              kind: "invalid_network",
              retryable: false,
            },
          }),
        );
        deps.metrics?.finished({
          status: "failed",
          errorKind: "invalid_network",
          heldMs: performance.now() - delivered,
          sandboxMs: 0,
        });
        return { kind: "ack" };
      }
      handover.done = true;
      outcome = await executeWorkflow(
        executor,
        {
          executionId: job.executionId,
          organization: { id: claim.organizationId, name: claim.organizationName },
          startedBy: {
            id: claim.startedBy || null,
            name: claim.startedByName,
            email: claim.startedByEmail || null,
          },
          workflow: {
            name: claim.workflow,
            module: claim.modulePath,
            network: claim.network,
            timeoutSeconds: claim.timeoutSeconds,
          },
          params: claim.params ?? {},
          dataProvider: claim.kind === ExecutionKind.EXECUTION_KIND_DATA_PROVIDER,
          view: { fingerprint: tree.fingerprint, entries: tree.entries },
          importMap: JSON.parse(tree.importMapJson) as { imports: Record<string, string> },
          organizationHosts: claim.organizationHosts,
        },
        services,
        cancel.signal,
        early,
      );
    } finally {
      clearInterval(ticker);
      await flushing;
    }
    // Events still buffered go out before the outcome. With none, a report would only fetch
    // the cancellation flag, which no longer matters: one round trip less per execution.
    const recorded = await recordOutcome(async () => {
      if (logs.length > 0 || checkpoints.length > 0) await flush();
      await client.completeExecution({
        executionToken: token,
        executionId: job.executionId,
        status: statusOf[outcome.status],
        result: outcome.status === "succeeded" ? outcome.result : undefined,
        error: outcome.status === "succeeded" ? undefined : outcome.error,
      });
    });
    deps.metrics?.finished({
      status: outcome.status,
      ...(outcome.status !== "succeeded" && { errorKind: outcome.error.kind }),
      ...(outcome.started && { started: outcome.started }),
      heldMs: performance.now() - delivered,
      sandboxMs: outcome.sandbox.durationMs,
    });
    deps.log.info(
      {
        ...log,
        status: outcome.status,
        durationMs: outcome.sandbox.durationMs,
        sandboxStarted: outcome.started,
        recorded,
      },
      "execution finished",
    );
    return { kind: "ack" };
  }
}
