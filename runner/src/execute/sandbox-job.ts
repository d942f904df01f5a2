import { randomBytes } from "node:crypto";
import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Redactor } from "../channel/redactor.js";
import {
  type ChannelCompletion,
  type ExecutionServices,
  openSdkChannel,
} from "../channel/sdk-channel.js";
import type { DenoBinary } from "../sandbox/deno-binary.js";
import { buildNetworkPolicy } from "../sandbox/network-policy.js";
import type { ProcessLimits } from "../sandbox/resource-limits.js";
import { buildSandboxCommand } from "../sandbox/sandbox-command.js";
import { runSandboxed, type SandboxHost, type SandboxOutcome } from "../sandbox/sandbox-process.js";
import { ensureDenoDir, materializeTree, type TreeStore } from "../sandbox/tree.js";

/** The runner-wide parts: sandbox host, binaries, where trees, caches and jobs live. */
export interface ExecutorDeps {
  host: SandboxHost;
  deno: DenoBinary;
  bwrapPath: string;
  /** The built SDK directory (sdk/dist), mounted at /sdk. */
  sdkDir: string;
  /** Trees per (organization, fingerprint), with content fetched by hash when missing. */
  trees: TreeStore;
  /** Parent of the per-organization Deno caches. */
  denoDirs: string;
  /** Parent of the per-job directories (removed after each run). */
  jobs: string;
  limits: ProcessLimits;
  heapLimitMb: number;
}

/** One sandboxed run: which tree, which entry, what the channel says first. */
export interface SandboxJob {
  /** Organization id, or "global" for the global scope's own tree (discovery of global modules). */
  treeOwner: string;
  view: { fingerprint: string; entries: ReadonlyArray<{ path: string; contentHash: string }> };
  importMap: { imports: Record<string, string> };
  entrySource: string;
  start: Record<string, unknown>;
  token: string;
  network: { workflowHosts: string[]; organizationHosts: string[] };
  timeoutMs: number;
}

/** What came back: the process outcome and what the SDK said on the channel. */
export interface SandboxJobResult {
  sandbox: SandboxOutcome;
  completion: ChannelCompletion | undefined;
  violation: string | undefined;
  redactor: Redactor;
}

/**
 * Materializes (or reuses) the tree, writes the job (import map and entry), opens the SDK
 * channel and runs one single-use sandboxed Deno process. Output lines are forwarded to
 * `services.log` as untrusted text, redacted of every secret the run has seen.
 */
export async function runSandboxJob(
  deps: ExecutorDeps,
  job: SandboxJob,
  services: ExecutionServices,
  signal?: AbortSignal,
): Promise<SandboxJobResult> {
  const workspaceDir = await materializeTree(
    deps.trees,
    job.treeOwner,
    job.view.fingerprint,
    job.view.entries,
  );
  // Random, not the execution id: nothing in the sandbox's paths names the execution.
  const jobRoot = join(deps.jobs, randomBytes(12).toString("hex"));
  const jobDir = join(jobRoot, "job");
  const socketDir = join(jobRoot, "socket");
  await mkdir(jobDir, { recursive: true });
  await mkdir(socketDir, { recursive: true });
  // The sandbox runs as another uid: it must be able to traverse to the job and socket.
  await Promise.all([chmod(jobRoot, 0o711), chmod(jobDir, 0o755), chmod(socketDir, 0o711)]);
  await writeFile(join(jobDir, "import_map.json"), JSON.stringify(job.importMap), { mode: 0o444 });
  await writeFile(join(jobDir, "entry.js"), job.entrySource, { mode: 0o444 });
  const channel = await openSdkChannel({
    dir: socketDir,
    token: job.token,
    start: job.start,
    services,
  });
  try {
    const command = buildSandboxCommand({
      bwrapPath: deps.bwrapPath,
      deno: deps.deno,
      workspaceDir,
      sdkDir: deps.sdkDir,
      jobDir,
      socketDir,
      denoDir: await ensureDenoDir(deps.denoDirs, job.treeOwner, deps.host.hostUid),
      network: buildNetworkPolicy(job.network),
      token: job.token,
      heapLimitMb: deps.heapLimitMb,
      tmpSizeBytes: 16 * 1024 * 1024,
      scratch: false,
    });
    const sandbox = await runSandboxed({
      host: deps.host,
      command,
      limits: deps.limits,
      timeoutMs: job.timeoutMs,
      ...(signal && { signal }),
      onOutput: (stream, line) =>
        services.log({
          level: stream === "stderr" ? "warning" : "info",
          message: channel.redactor.text(line),
          data: { stream },
        }),
    });
    return {
      sandbox,
      completion: channel.completion(),
      violation: channel.violation(),
      redactor: channel.redactor,
    };
  } finally {
    await channel.close();
    await rm(jobRoot, { recursive: true, force: true });
  }
}
