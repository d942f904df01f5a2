import type { Writable } from "node:stream";
import { findExecutable } from "./deno-binary.js";
import { createLauncherPool, type Launcher, type LauncherPool } from "./launcher-pool.js";
import {
  createOutputSink,
  defaultOutputLimits,
  type OutputLimits,
  type OutputStream,
} from "./output-lines.js";
import {
  createResourceLimiter,
  type LimitsLogger,
  type ProcessLimits,
  type ResourceLimiter,
} from "./resource-limits.js";
import {
  type SandboxCommand,
  sandboxArgsFd,
  sandboxSeccompFd,
  sandboxUid,
} from "./sandbox-command.js";

/** Host tools, limits and ready launchers shared by every sandbox of this runner. */
export interface SandboxHost {
  shPath: string;
  prlimitPath: string;
  setprivPath: string;
  /** Host uid bubblewrap runs as (null: the runner's own; see `LaunchWrapper.hostUid`). */
  hostUid: number | null;
  limiter: ResourceLimiter;
  launchers: LauncherPool;
  /** Kills waiting launchers and removes the pooled cgroups; call once at shutdown. */
  close(): Promise<void>;
}

/**
 * Finds sh, prlimit and setpriv (util-linux), probes the cgroups (logging what degrades) and,
 * when the runner is root, runs sandboxes as host uid 65534 rather than root. With `spares`
 * and the kind of sandbox the runner starts (`defaults`), that many launchers wait ready.
 */
export async function createSandboxHost(
  logger: LimitsLogger,
  options: {
    spares?: number;
    defaults?: { limits: ProcessLimits; file: string; fixedArgs: readonly string[] };
  } = {},
): Promise<SandboxHost> {
  const isRoot = process.getuid?.() === 0;
  const tools = {
    shPath: findExecutable("/bin/sh"),
    prlimitPath: findExecutable("prlimit"),
    setprivPath: findExecutable("setpriv"),
    hostUid: isRoot ? sandboxUid : null,
  };
  const limiter = await createResourceLimiter(logger);
  const launchers = createLauncherPool({
    tools,
    limiter,
    logger,
    spares: options.spares ?? 0,
    ...(options.defaults && { defaults: options.defaults }),
  });
  return { ...tools, limiter, launchers, close: () => launchers.close() };
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

/** What to run and how to bound it. */
export interface RunSandboxedOptions {
  host: SandboxHost;
  command: SandboxCommand;
  limits: ProcessLimits;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Every output line, control characters stripped, until the caps are reached. */
  onOutput: (stream: OutputStream, line: string) => void;
  outputLimits?: OutputLimits;
}

/** V8's fatal "Reached heap limit" ends Deno with SIGTRAP: 128 + 5. */
const heapOutOfMemoryExit = 133;

/**
 * Runs one sandbox command to completion in its own process group, inside its cgroups, with
 * rlimits, and resolves with how it ended. The timeout, cancellation and an output flood all
 * SIGKILL the whole group at once: user code can trap SIGTERM, and bubblewrap does not
 * forward it anyway; the sandbox's pid 1 dies with bubblewrap (--die-with-parent), and
 * with it every task of the pid namespace.
 */
export async function runSandboxed(options: RunSandboxedOptions): Promise<SandboxOutcome> {
  const started = performance.now();
  const outcome: SandboxOutcome = {
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
  if (options.signal?.aborted) {
    return { ...outcome, cancelled: true };
  }
  const { command } = options;
  const fixed = sandboxFixedArgs(command);
  const launcher = await options.host.launchers.take(options.limits, command.file, fixed);
  try {
    await runLaunched(options, launcher, outcome);
    outcome.outOfMemory =
      outcome.exitCode === heapOutOfMemoryExit || (await launcher.cgroup.oomKilled());
    outcome.tasksLimitReached = await launcher.cgroup.tasksLimitReached();
  } finally {
    await options.host.launchers.finish(launcher);
  }
  outcome.durationMs = Math.round(performance.now() - started);
  return outcome;
}

/**
 * The part of a sandbox command that is the same for every job of a kind (bubblewrap's
 * `--args 3 --`): a launcher waits with it, and the rest (Deno and its per-job flags) is sent
 * when the job starts.
 */
export function sandboxFixedArgs(command: SandboxCommand): string[] {
  const end = command.args.indexOf("--");
  if (end < 0) throw new Error("a sandbox command must separate bubblewrap's options with --");
  return command.args.slice(0, end + 1);
}

async function runLaunched(
  options: RunSandboxedOptions,
  launcher: Launcher,
  outcome: SandboxOutcome,
): Promise<void> {
  const { command } = options;
  const child = launcher.child;
  const sink = createOutputSink(options.outputLimits ?? defaultOutputLimits, options.onOutput);
  let exited = launcher.exited;
  child.once("exit", () => {
    exited = true;
  });
  const kill = (reason: "timedOut" | "cancelled" | "outputFlooded") => {
    if (exited) return;
    outcome[reason] = true;
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {}
    void launcher.cgroup.killAll();
  };
  const closed = new Promise<void>((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      // A spare that died before use: its own exit is the outcome.
      outcome.exitCode = child.exitCode;
      outcome.signal = child.signalCode;
      resolve();
      return;
    }
    child.once("error", reject);
    child.once("close", (code, signal) => {
      outcome.exitCode = code;
      outcome.signal = signal;
      resolve();
    });
  });
  const timer = setTimeout(() => kill("timedOut"), options.timeoutMs);
  const onAbort = () => kill("cancelled");
  options.signal?.addEventListener("abort", onAbort, { once: true });

  for (const { stream, chunk } of launcher.early) {
    if (!sink.push(stream, chunk)) kill("outputFlooded");
  }
  for (const stream of ["stdout", "stderr"] as const) {
    const readable = child[stream] as NonNullable<(typeof child)[typeof stream]>;
    readable.on("data", (chunk: Buffer) => {
      if (!sink.push(stream, chunk)) kill("outputFlooded");
    });
    readable.on("end", () => sink.end(stream));
    if (readable.readableEnded) sink.end(stream);
  }
  // Bubblewrap reads its options and the seccomp program once it runs; the pipes hold them
  // until then. If it fails before reading them, the write fails with EPIPE: its exit says why.
  for (const [fd, data] of [
    [sandboxArgsFd, command.fdArgs.map((arg) => `${arg}\0`).join("")],
    [sandboxSeccompFd, command.seccomp],
  ] as const) {
    (child.stdio[fd] as Writable).end(data);
  }
  if (!exited) launcher.start(command.args.slice(sandboxFixedArgs(command).length));
  try {
    await closed;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
  outcome.outputTruncated = sink.truncated;
  outcome.outputFlooded ||= sink.flooded;
}
