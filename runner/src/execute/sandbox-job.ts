import { createHash, randomBytes } from "node:crypto";
import { access, chmod, mkdir, rename, rm, writeFile } from "node:fs/promises";
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
import {
  emptyOutcome,
  type SandboxHost,
  type SandboxOutcome,
  type StartedSandbox,
  startSandboxed,
} from "../sandbox/sandbox-process.js";
import { ensureDenoDir, materializeTree, type TreeStore } from "../sandbox/tree.js";
import type { PreparedSandboxes } from "./prepared-sandboxes.js";

/** The runner-wide parts: sandbox host, binaries, where trees, caches and jobs live. */
export interface ExecutorDeps {
  host: SandboxHost;
  deno: DenoBinary;
  bwrapPath: string;
  /** The sandbox root (sandbox-root.ts): Deno, its libraries and the SDK, mounted as /. */
  rootDir: string;
  /** Trees per (organization, fingerprint), with content fetched by hash when missing. */
  trees: TreeStore;
  /** Parent of the per-organization Deno caches. */
  denoDirs: string;
  /** Parent of the per-job directories (removed after each run). */
  jobs: string;
  limits: ProcessLimits;
  heapLimitMb: number;
  /** Sandboxes started ahead of repeating jobs (prepared-sandboxes.ts); none if absent. */
  prepared?: PreparedSandboxes;
}

/** What a sandbox is started with, before its job is known: which tree, entry and network. */
export interface SandboxBoot {
  /** Organization id, or "global" for the global scope's own tree (discovery of global modules). */
  treeOwner: string;
  view: { fingerprint: string; entries: ReadonlyArray<{ path: string; contentHash: string }> };
  importMap: { imports: Record<string, string> };
  entrySource: string;
  network: { workflowHosts: string[]; organizationHosts: string[] };
}

/** One sandboxed run: the boot, what the channel says first, and the wall-clock limit. */
export interface SandboxJob extends SandboxBoot {
  start: Record<string, unknown>;
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
 * A sandbox started for a boot: Deno is up (or coming up) with the SDK, which has said hello
 * on the channel and waits for its start message; no workflow module is loaded before that.
 * Used for one job, or discarded.
 */
export interface BootedSandbox {
  /** Ended before its job (it can only be discarded, or run to report why). */
  readonly exited: boolean;
  /** Sends the start message and supervises the run to its end. Once. */
  run(
    job: Pick<SandboxJob, "start" | "timeoutMs">,
    services: ExecutionServices,
    signal?: AbortSignal,
  ): Promise<SandboxJobResult>;
  discard(): Promise<void>;
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
  return (await bootSandboxJob(deps, job)).run(job, services, signal);
}

/** Job directories written by this process, by directory: they never change once written. */
const writtenJobDirs = new Map<string, Promise<string>>();
const rememberedJobDirs = 1000;

/**
 * The job directory of a boot (its import map and entry), written once and shared read-only
 * by every sandbox of the same boot: nothing in it is secret or differs between its sandboxes,
 * and writing and removing it for each one was a dozen file operations per execution. Named
 * by the hash of its content, written to a staging directory and renamed into place, so a
 * directory under that name is always complete.
 */
function writeJobDir(jobs: string, boot: SandboxBoot): Promise<string> {
  const importMap = JSON.stringify(boot.importMap);
  const hash = createHash("sha256").update(importMap).update("\0").update(boot.entrySource);
  const dir = join(jobs, `job-${hash.digest("hex")}`);
  const known = writtenJobDirs.get(dir);
  if (known) return known;
  const written = (async () => {
    if (
      await access(join(dir, "entry.js")).then(
        () => true,
        () => false,
      )
    )
      return dir;
    const staging = join(jobs, `.staging-${randomBytes(8).toString("hex")}`);
    await mkdir(staging, { mode: 0o700 });
    try {
      await Promise.all(
        (
          [
            ["import_map.json", importMap],
            ["entry.js", boot.entrySource],
          ] as const
        ).map(async ([name, text]) => {
          await writeFile(join(staging, name), text, { mode: 0o444 });
          // Explicitly: writeFile's mode passes through the runner's umask (077 → 0400).
          await chmod(join(staging, name), 0o444);
        }),
      );
      await chmod(staging, 0o755);
      await rename(staging, dir);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      // Another runner (or sandbox) of the same boot got there first: theirs is identical.
      if (
        !(await access(join(dir, "entry.js")).then(
          () => true,
          () => false,
        ))
      )
        throw error;
    }
    return dir;
  })();
  if (writtenJobDirs.size >= rememberedJobDirs) writtenJobDirs.clear();
  writtenJobDirs.set(dir, written);
  written.catch(() => writtenJobDirs.delete(dir));
  return written;
}

/**
 * Starts the sandbox of a boot: the tree, a job directory (import map and entry), the SDK
 * channel with a token of its own (the sandbox never holds a control plane credential) and
 * the single-use Deno process, which loads the SDK and waits on the channel.
 */
export async function bootSandboxJob(
  deps: ExecutorDeps,
  boot: SandboxBoot,
): Promise<BootedSandbox> {
  const workspaceDir = await materializeTree(
    deps.trees,
    boot.treeOwner,
    boot.view.fingerprint,
    boot.view.entries,
  );
  const jobDir = await writeJobDir(deps.jobs, boot);
  // Random, not the execution id: nothing in the sandbox's paths names the execution. The
  // jobs directory is 0711: no other uid can list it to find the name.
  const socketPath = join(deps.jobs, `sdk-${randomBytes(12).toString("hex")}.sock`);
  const token = randomBytes(24).toString("base64url");
  const channel = await openSdkChannel({ socketPath, token });
  // Closing the channel removes its socket. Not on anyone's critical path: it runs after the
  // result is out.
  const cleanUp = () => {
    void channel.close().catch(() => {});
  };
  let started: StartedSandbox;
  try {
    const command = buildSandboxCommand({
      bwrapPath: deps.bwrapPath,
      rootDir: deps.rootDir,
      workspaceDir,
      jobDir,
      socketPath,
      denoDir: await ensureDenoDir(deps.denoDirs, boot.treeOwner, deps.host.hostUid),
      network: buildNetworkPolicy(boot.network),
      token,
      heapLimitMb: deps.heapLimitMb,
      tmpSizeBytes: 16 * 1024 * 1024,
      scratch: false,
    });
    started = await startSandboxed({ host: deps.host, command, limits: deps.limits });
  } catch (error) {
    cleanUp();
    throw error;
  }
  return {
    get exited() {
      return started.exited;
    },
    async run(job, services, signal) {
      const began = performance.now();
      channel.begin(job.start, services);
      const supervised = started.supervise({
        timeoutMs: job.timeoutMs,
        ...(signal && { signal }),
        onOutput: (stream, line) =>
          services.log({
            level: stream === "stderr" ? "warning" : "info",
            message: channel.redactor.text(line),
            data: { stream },
          }),
      });
      supervised.finally(cleanUp).catch(() => {});
      // The outcome is final once the SDK has reported it (it exits right after), so the
      // result does not wait for the sandbox's teardown — Deno's exit and the kernel
      // dismantling its namespaces, ~5 ms. Output written before the report is already in
      // the pipes: one turn of the event loop reads it. The process is still bounded by its
      // supervision until it is gone, and only then is its job cleaned up.
      const reported = channel.completed.then(
        () => new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined))),
      );
      const ended = await Promise.race([supervised, reported]);
      return {
        // Reported before the process ended: all that is known of the sandbox is its time.
        sandbox: ended ?? { ...emptyOutcome(), durationMs: Math.round(performance.now() - began) },
        completion: channel.completion(),
        violation: channel.violation(),
        redactor: channel.redactor,
      };
    },
    async discard() {
      await started.discard();
      cleanUp();
    },
  };
}
