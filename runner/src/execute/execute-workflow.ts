import { runEntrySource, type StartedBy } from "@bifrost/sdk/host";
import type { ChannelCompletion, ExecutionServices } from "../channel/sdk-channel.js";
import type { SandboxOutcome } from "../sandbox/sandbox-process.js";
import { bootKey } from "./prepared-sandboxes.js";
import {
  type BootedSandbox,
  bootSandboxJob,
  type ExecutorDeps,
  type SandboxBoot,
} from "./sandbox-job.js";

export type { ExecutorDeps };

/** Everything one execution needs, as the control plane hands it to the runner on claim. */
export interface ExecutionSpec {
  executionId: string;
  organization: { id: string; name: string };
  /** Who started it: a user (id, name, email), or the platform (id and email null). */
  startedBy: StartedBy;
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
export type ExecutionOutcome = (
  | { status: "succeeded"; result: unknown; sandbox: SandboxOutcome }
  | {
      status: "failed" | "timed_out" | "cancelled";
      error: ExecutionError;
      sandbox: SandboxOutcome;
    }
) & { started?: SandboxStart };

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
  /** A sandbox started before the claim from the job's hint (used only if its boot matches). */
  early?: EarlySandbox,
): Promise<ExecutionOutcome> {
  const boot = executionBoot(spec);
  let sandbox = early && (await adoptEarly(early, boot));
  let started: SandboxStart = "early";
  if (!sandbox) {
    sandbox = deps.prepared?.take(boot);
    started = "prepared";
  }
  // The next job of this boot, if it repeats, gets a sandbox started while this one runs.
  deps.prepared?.anticipate(boot, () => bootSandboxJob(deps, boot));
  if (!sandbox) {
    sandbox = await bootSandboxJob(deps, boot);
    started = "after_claim";
  }
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
  return {
    ...classify(run.sandbox, run.completion, run.violation, spec.workflow.timeoutSeconds),
    started,
  };
}

/**
 * When the execution's sandbox was started: from the job's hint while the claim was under
 * way, ahead of time for a repeating job, or once the claim was in.
 */
export type SandboxStart = "early" | "prepared" | "after_claim";

/** A sandbox started ahead of the claim, and the boot it was started with. */
export interface EarlySandbox {
  boot: SandboxBoot;
  sandbox: Promise<BootedSandbox>;
}

/** What an execution's sandbox is started with: the organization's tree, the entry, the hosts. */
export function executionBoot(
  spec: Pick<ExecutionSpec, "dataProvider" | "view" | "importMap" | "organizationHosts"> & {
    organization: { id: string };
    workflow: Pick<ExecutionSpec["workflow"], "name" | "module" | "network">;
  },
): SandboxBoot {
  return {
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
}

/**
 * The early sandbox if it was started with exactly this boot (and came up); otherwise it is
 * discarded — it has been sent nothing, so nothing of this job was ever in it.
 */
async function adoptEarly(early: EarlySandbox, boot: SandboxBoot) {
  const sandbox = await early.sandbox.catch(() => undefined);
  if (!sandbox) return undefined;
  if (bootKey(early.boot) === bootKey(boot) && !sandbox.exited) return sandbox;
  void sandbox.discard().catch(() => {});
  return undefined;
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
