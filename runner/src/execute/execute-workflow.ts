import { runEntrySource } from "@bifrost/sdk/host";
import type { ChannelCompletion, ExecutionServices } from "../channel/sdk-channel.js";
import type { SandboxOutcome } from "../sandbox/sandbox-process.js";
import { bootSandboxJob, type ExecutorDeps, type SandboxBoot } from "./sandbox-job.js";

export type { ExecutorDeps };

/** Everything one execution needs, as the control plane hands it to the runner on claim. */
export interface ExecutionSpec {
  executionId: string;
  organization: { id: string; name: string };
  startedBy: string;
  workflow: { name: string; module: string; network: string[]; timeoutSeconds: number };
  /** Run the data provider named `workflow.name` (params are its inputs) instead of a workflow. */
  dataProvider?: boolean;
  params: Record<string, unknown>;
  /** The organization's effective tree: its fingerprint and (path, content hash) entries. */
  view: { fingerprint: string; entries: ReadonlyArray<{ path: string; contentHash: string }> };
  importMap: { imports: Record<string, string> };
  /** Hosts the organization allows every workflow to reach. */
  organizationHosts: string[];
}

/** A failure as the execution record keeps it. */
export interface ExecutionError {
  name: string;
  message: string;
  stack: string;
  /** user, permission, invalid_result, internal, timeout, out_of_memory, cancelled, crashed, protocol. */
  kind: string;
  retryable: boolean;
}

/** How an execution ended. */
export type ExecutionOutcome =
  | { status: "succeeded"; result: unknown; sandbox: SandboxOutcome }
  | {
      status: "failed" | "timed_out" | "cancelled";
      error: ExecutionError;
      sandbox: SandboxOutcome;
    };

/**
 * Runs one workflow execution: materializes (or reuses) the organization's effective tree,
 * writes the job (import map, entry), opens the SDK channel, and runs a single-use sandboxed
 * Deno process. The outcome comes from the channel's completion message and the process's
 * exit — never from what it printed, which is forwarded to `services.log` as untrusted text.
 */
export async function executeWorkflow(
  deps: ExecutorDeps,
  spec: ExecutionSpec,
  services: ExecutionServices,
  signal?: AbortSignal,
): Promise<ExecutionOutcome> {
  const boot: SandboxBoot = {
    treeOwner: spec.organization.id,
    view: spec.view,
    importMap: spec.importMap,
    entrySource: runEntrySource(
      spec.dataProvider
        ? { module: spec.workflow.module, dataProvider: spec.workflow.name }
        : { module: spec.workflow.module, workflow: spec.workflow.name },
    ),
    network: { workflowHosts: spec.workflow.network, organizationHosts: spec.organizationHosts },
  };
  const prepared = deps.prepared?.take(boot);
  // The next job of this boot, if it repeats, gets a sandbox started while this one runs.
  deps.prepared?.anticipate(boot, () => bootSandboxJob(deps, boot));
  const sandbox = prepared ?? (await bootSandboxJob(deps, boot));
  const run = await sandbox.run(
    {
      start: {
        type: "start",
        mode: "run",
        execution: {
          id: spec.executionId,
          organization: spec.organization,
          startedBy: spec.startedBy,
          workflow: spec.workflow.name,
        },
        params: spec.params,
      },
      timeoutMs: spec.workflow.timeoutSeconds * 1000,
    },
    services,
    signal,
  );
  return classify(run.sandbox, run.completion, run.violation, spec.workflow.timeoutSeconds);
}

function failure(kind: string, message: string, retryable = false): ExecutionError {
  return { name: "ExecutionError", message, stack: "", kind, retryable };
}

/** Decides the outcome: what the SDK reported, unless the process was stopped first. */
export function classify(
  sandbox: SandboxOutcome,
  completion: ChannelCompletion | undefined,
  violation: string | undefined,
  timeoutSeconds: number,
): ExecutionOutcome {
  if (sandbox.cancelled) {
    return { status: "cancelled", error: failure("cancelled", "execution was cancelled"), sandbox };
  }
  if (sandbox.timedOut) {
    const message = `execution exceeded its ${timeoutSeconds} s timeout and was killed`;
    return { status: "timed_out", error: failure("timeout", message), sandbox };
  }
  if (violation) {
    return {
      status: "failed",
      error: failure("protocol", `the workflow broke the SDK channel: ${violation}`),
      sandbox,
    };
  }
  if (completion?.type === "result")
    return { status: "succeeded", result: completion.value, sandbox };
  if (completion?.type === "failure")
    return { status: "failed", error: { ...completion.error }, sandbox };
  if (sandbox.outOfMemory) {
    return {
      status: "failed",
      error: failure("out_of_memory", "execution ran out of memory and was killed"),
      sandbox,
    };
  }
  if (sandbox.outputFlooded) {
    return {
      status: "failed",
      error: failure("output_limit", "execution flooded its output and was killed"),
      sandbox,
    };
  }
  if (sandbox.tasksLimitReached) {
    return {
      status: "failed",
      error: failure("task_limit", "execution hit its thread/process limit"),
      sandbox,
    };
  }
  const how = sandbox.signal
    ? `was killed by ${sandbox.signal}`
    : `exited with code ${sandbox.exitCode}`;
  return {
    status: "failed",
    error: failure("crashed", `the workflow process ${how} without reporting a result`),
    sandbox,
  };
}
