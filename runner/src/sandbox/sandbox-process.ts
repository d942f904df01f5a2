import { createHash, randomBytes } from "node:crypto";
import { accessSync, constants, rmSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findExecutable } from "./deno-binary.js";
import {
  createOutputSink,
  defaultOutputLimits,
  type OutputLimits,
  type OutputStream,
} from "./output-lines.js";
import { processExists } from "./process-exists.js";
import {
  createResourceLimiter,
  defaultProcessLimits,
  type LimitsLogger,
  type ProcessLimits,
  type ResourceLimiter,
} from "./resource-limits.js";
import { type SandboxCommand, sandboxUid } from "./sandbox-command.js";
import { prepareStarterDir, type StarterTools, writeStarterFileSync } from "./sandbox-starter.js";
import { createStarterPool, type StarterPool } from "./starter-pool.js";

/** Host tools, limits and ready starters shared by every sandbox of this runner. */
export interface SandboxHost extends StarterTools {
  limiter: ResourceLimiter;
  starters: StarterPool;
  /**
   * The starters' working directory (`prepareStarterDir`): each sandbox's bubblewrap options
   * and the seccomp program are files here, opened by the starter's fork as fd 3 and fd 4.
   */
  dir: string;
  /**
   * The name of the file in `dir` holding `program`, written once: the seccomp program is the
   * same for every sandbox of an architecture.
   */
  seccompFile(program: Buffer): Promise<string>;
  /** Kills the starters, removes the pooled cgroups and the directory; call once at shutdown. */
  close(): Promise<void>;
}

/**
 * Finds sh and setpriv (util-linux), probes the cgroups (logging what degrades) and, when the
 * runner is root, runs starters and sandboxes as host uid `hostUid` (default 65534, "nobody")
 * rather than root; a runner that is not root runs them as itself. With `spares`, that many
 * starters wait ready; `reuse: false` gives every sandbox a starter of its own (only to
 * measure what the pool saves).
 */
export async function createSandboxHost(
  logger: LimitsLogger,
  options: { spares?: number; limits?: ProcessLimits; reuse?: boolean; hostUid?: number } = {},
): Promise<SandboxHost> {
  const isRoot = process.getuid?.() === 0;
  if (options.hostUid !== undefined && !isRoot) {
    logger.warn(
      { hostUid: options.hostUid },
      "a sandbox uid applies only to a runner running as root; sandboxes run as the runner's uid",
    );
  }
  const tools: StarterTools = {
    shPath: findExecutable("/bin/sh"),
    setprivPath: findExecutable("setpriv"),
    hostUid: isRoot ? checkHostUid(options.hostUid ?? sandboxUid) : null,
    unsharePath: isRoot ? findOptionalExecutable("unshare") : null,
  };
  // Private: the files here hold each sandbox's channel token until it has ended. Named by
  // this process, so a later runner removes what a crashed one left.
  const parent = starterDirsParent();
  await removeStarterDirsOfDeadRunners(parent);
  const dir = await mkdtemp(join(parent, `${starterDirPrefix}${process.pid}-`));
  await prepareStarterDir(dir, tools.hostUid);
  const limiter = await createResourceLimiter(logger);
  const starters = createStarterPool({
    tools,
    limiter,
    logger,
    dir,
    spares: options.spares ?? 0,
    limits: options.limits ?? defaultProcessLimits,
    ...(options.reuse !== undefined && { reuse: options.reuse }),
  });
  const seccompFiles = new Map<string, Promise<string>>();
  return {
    ...tools,
    limiter,
    starters,
    dir,
    seccompFile(program) {
      const name = `seccomp-${createHash("sha256").update(program).digest("hex").slice(0, 16)}.bpf`;
      let written = seccompFiles.get(name);
      if (!written) {
        written = Promise.resolve().then(() => {
          writeStarterFileSync(join(dir, name), program);
          return name;
        });
        written.catch(() => seccompFiles.delete(name));
        seccompFiles.set(name, written);
      }
      return written;
    },
    close: async () => {
      await starters.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// Root would make a sandbox escape host root; 2^32 - 1 is "no uid" to the kernel.
function checkHostUid(uid: number): number {
  if (!Number.isInteger(uid) || uid < 1 || uid >= 2 ** 32 - 1) {
    throw new Error(`sandbox uid ${uid} must be an integer from 1 to ${2 ** 32 - 2}`);
  }
  return uid;
}

const starterDirPrefix = "bifrost-starters-";

/**
 * Where starter directories go: /dev/shm, a tmpfs, where there is one, so the channel tokens
 * in their files never reach a disk, and creating and removing a sandbox's options file costs
 * ~25 µs of CPU instead of ~130 on this host's ext4 /tmp (journaled); the system's temporary
 * directory otherwise.
 */
export function starterDirsParent(): string {
  try {
    accessSync("/dev/shm", constants.W_OK | constants.X_OK);
    return "/dev/shm";
  } catch {
    return tmpdir();
  }
}

async function removeStarterDirsOfDeadRunners(parent: string): Promise<void> {
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(starterDirPrefix)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(starterDirPrefix.length))?.[1]);
    if (!pid || processExists(pid)) continue;
    await rm(join(parent, name), { recursive: true, force: true }).catch(() => {});
  }
}

/** How a sandboxed process ended. Never derived from what it printed. */
export interface SandboxOutcome {
  /** Exit code of the sandbox (Deno's, or 128 + signal if Deno died of one); null if killed. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Killed at the wall-clock timeout. */
  timedOut: boolean;
  /** Killed because the AbortSignal fired. */
  cancelled: boolean;
  /** V8 heap limit reached (exit 133) or the cgroup OOM killer ran. */
  outOfMemory: boolean;
  /** A thread or process could not be created because of the task limit. */
  tasksLimitReached: boolean;
  /** Some output was dropped (line, byte or line-length cap). */
  outputTruncated: boolean;
  /** Killed because output kept pouring in after the caps. */
  outputFlooded: boolean;
  durationMs: number;
}

/** What to run, in which host, with which limits. */
export interface StartSandboxedOptions {
  host: SandboxHost;
  command: SandboxCommand;
  limits: ProcessLimits;
}

/** How to bound a started sandbox and where its output goes. */
export interface SuperviseOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Every output line, control characters stripped, until the caps are reached. */
  onOutput: (stream: OutputStream, line: string) => void;
  outputLimits?: OutputLimits;
}

/** What to run and how to bound it. */
export type RunSandboxedOptions = StartSandboxedOptions & SuperviseOptions;

/** A sandbox that is running (or has already ended) and that nobody supervises yet. */
export interface StartedSandbox {
  /** The process ended already (a sandbox prepared ahead of its job can die waiting). */
  readonly exited: boolean;
  /**
   * From now on: the wall-clock timeout, cancellation and output caps apply, output (with
   * what came before) goes to `onOutput`, and it resolves with how the sandbox ended. Once.
   */
  supervise(options: SuperviseOptions): Promise<SandboxOutcome>;
  /** Kills it unsupervised and frees its cgroup. */
  discard(): Promise<void>;
}

/** V8's fatal "Reached heap limit" ends Deno with SIGTRAP: 128 + 5. */
const heapOutOfMemoryExit = 133;

/** Output kept for a sandbox nobody supervises yet; more than this is a flood. */
const unsupervisedOutputBytes = 64 * 1024;

/**
 * Runs one sandbox command to completion inside its cgroups, with rlimits, and resolves with
 * how it ended. The timeout, cancellation and an output flood all SIGKILL bubblewrap and
 * every other task of the cgroup at once: user code can trap SIGTERM, and bubblewrap does
 * not forward it anyway; the sandbox's pid 1 dies with bubblewrap (--die-with-parent), and
 * with it every task of the pid namespace.
 */
export async function runSandboxed(options: RunSandboxedOptions): Promise<SandboxOutcome> {
  if (options.signal?.aborted) return { ...emptyOutcome(), cancelled: true };
  return (await startSandboxed(options)).supervise(options);
}

/**
 * Starts a sandbox command with a starter of the pool: its fork opens the bubblewrap options
 * and the seccomp program as fd 3 and fd 4 and execs bubblewrap, which execs Deno. Output is
 * held until `supervise`; no limit but the cgroup's and the rlimits applies before it, so
 * supervise soon (or discard).
 */
export async function startSandboxed(options: StartSandboxedOptions): Promise<StartedSandbox> {
  const { command, host, limits } = options;
  // A sandbox with no network of the host's runs in the empty network namespace of a starter
  // made for it, instead of bubblewrap making and dismantling one per sandbox (~1–1.4 ms of
  // machine CPU each). The sandboxes of such a starter share it one after another, never at
  // once; with its loopback down and owned by the host's user namespace, nothing of one can
  // be left there for the next (docs/design-notes.md).
  const unshareNet = command.fdArgs.indexOf("--unshare-net");
  const ownNetwork = unshareNet >= 0 && host.starters.networks.includes("own");
  const fdArgs = ownNetwork ? command.fdArgs.toSpliced(unshareNet, 1) : command.fdArgs;
  const starter = await host.starters.take(limits, ownNetwork ? "own" : "host");
  // Random, not the execution's id; readable only by the runner and the starters (the token
  // is in it, see `prepareStarterDir`).
  const argsPath = join(host.dir, `${randomBytes(12).toString("hex")}.args`);
  let fd4File: string;
  try {
    writeStarterFileSync(argsPath, fdArgs.map((arg) => `${arg}\0`).join(""));
    fd4File = await host.seccompFile(command.seccomp);
  } catch (error) {
    removeQuietly(argsPath);
    await host.starters.finish(starter);
    throw error;
  }

  // Output goes to the sink once there is one; until then it is held (up to a cap).
  const held: Array<{ stream: OutputStream; chunk: Buffer }> = [];
  let heldBytes = 0;
  const ended = new Set<OutputStream>();
  let deliver: ((stream: OutputStream, chunk: Buffer) => void) | undefined;
  let end: ((stream: OutputStream) => void) | undefined;
  let killedByRunner = false;
  const run = starter.launch(
    {
      fd3File: argsPath.slice(host.dir.length + 1),
      fd4File,
      limits: {
        openFiles: limits.openFiles,
        fileSizeBytes: limits.fileSizeBytes,
        tasks: starter.cgroup.pids ? null : limits.tasks,
      },
      argv: [command.file, ...command.args],
    },
    {
      onData(stream, chunk) {
        if (deliver) return deliver(stream, chunk);
        heldBytes += chunk.length;
        if (heldBytes <= unsupervisedOutputBytes) held.push({ stream, chunk });
        else killRun();
      },
      onEnd: (stream) => (end ? end(stream) : ended.add(stream)),
    },
  );
  const killRun = () => {
    if (run.ended) return;
    killedByRunner = true;
    run.kill();
    void starter.cgroup.killAll(starter.pid);
  };
  const closed = run.done.then(({ status }) => {
    removeQuietly(argsPath);
    // The shell reports a death by signal as 128 + n; only the runner's own kill is named.
    if (status !== null && status > 128 && killedByRunner) {
      return { code: null, signal: "SIGKILL" as NodeJS.Signals };
    }
    return { code: status, signal: null };
  });

  let supervised = false;
  return {
    get exited() {
      return run.ended;
    },
    async discard() {
      supervised = true;
      killRun();
      await closed;
      await host.starters.finish(starter);
    },
    async supervise(bounds) {
      if (supervised) throw new Error("a sandbox is supervised once");
      supervised = true;
      const started = performance.now();
      const outcome = emptyOutcome();
      const sink = createOutputSink(bounds.outputLimits ?? defaultOutputLimits, bounds.onOutput);
      const kill = (reason: "timedOut" | "cancelled" | "outputFlooded") => {
        if (run.ended) return;
        outcome[reason] = true;
        killRun();
      };
      deliver = (stream, chunk) => {
        if (!sink.push(stream, chunk)) kill("outputFlooded");
      };
      end = (stream) => sink.end(stream);
      for (const { stream, chunk } of held.splice(0)) deliver(stream, chunk);
      if (heldBytes > unsupervisedOutputBytes) kill("outputFlooded");
      for (const stream of ended) end(stream);
      const timer = setTimeout(() => kill("timedOut"), bounds.timeoutMs);
      const onAbort = () => kill("cancelled");
      if (bounds.signal?.aborted) onAbort();
      bounds.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        const { code, signal } = await closed;
        outcome.exitCode = code;
        outcome.signal = signal;
        outcome.outputTruncated = sink.truncated;
        outcome.outputFlooded ||= sink.flooded;
        const [oomKilled, tasksLimitReached] = await Promise.all([
          starter.cgroup.oomKilled(),
          starter.cgroup.tasksLimitReached(),
        ]);
        outcome.outOfMemory = code === heapOutOfMemoryExit || oomKilled;
        outcome.tasksLimitReached = tasksLimitReached;
      } finally {
        clearTimeout(timer);
        bounds.signal?.removeEventListener("abort", onAbort);
        // Emptying the cgroup for the next sandbox happens after the outcome is out.
        void closed.then(() => host.starters.finish(starter)).catch(() => {});
      }
      outcome.durationMs = Math.round(performance.now() - started);
      return outcome;
    },
  };
}

/** An outcome with nothing happened yet: no exit, no limit reached, no time spent. */
export function emptyOutcome(): SandboxOutcome {
  return {
    exitCode: null,
    signal: null,
    timedOut: false,
    cancelled: false,
    outOfMemory: false,
    tasksLimitReached: false,
    outputTruncated: false,
    outputFlooded: false,
    durationMs: 0,
  };
}

/** Removes a file of the starter directory; one already gone, or that cannot go, is left. */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {}
}

/** The path of `name` on PATH, or null when there is none. */
function findOptionalExecutable(name: string): string | null {
  try {
    return findExecutable(name);
  } catch {
    return null;
  }
}
