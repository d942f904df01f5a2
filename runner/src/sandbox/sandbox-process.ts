import type { ChildProcess } from "node:child_process";
import type { Writable } from "node:stream";
import { findExecutable } from "./deno-binary.js";
import { createLauncherPool, type LauncherPool } from "./launcher-pool.js";
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
 * Runs one sandbox command to completion in its own process group, inside its cgroups, with
 * rlimits, and resolves with how it ended. The timeout, cancellation and an output flood all
 * SIGKILL the whole group at once: user code can trap SIGTERM, and bubblewrap does not
 * forward it anyway; the sandbox's pid 1 dies with bubblewrap (--die-with-parent), and
 * with it every task of the pid namespace.
 */
export async function runSandboxed(options: RunSandboxedOptions): Promise<SandboxOutcome> {
  if (options.signal?.aborted) return { ...emptyOutcome(), cancelled: true };
  return (await startSandboxed(options)).supervise(options);
}

/**
 * Starts a sandbox command with a launcher of the pool: bubblewrap gets its options and
 * seccomp program and execs Deno. Output is held until `supervise`; no limit but the
 * cgroup's and the rlimits applies before it, so supervise soon (or discard).
 */
export async function startSandboxed(options: StartSandboxedOptions): Promise<StartedSandbox> {
  const { command, host } = options;
  const fixed = sandboxFixedArgs(command);
  const launcher = await host.launchers.take(options.limits, command.file, fixed);
  const child = launcher.child;
  let exited = launcher.exited;
  child.once("exit", () => {
    exited = true;
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      // A spare that died before use: its own exit is the outcome.
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once("error", () => resolve({ code: null, signal: null }));
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  // Output goes to the sink once there is one; until then it is held (up to a cap).
  const held: Array<{ stream: OutputStream; chunk: Buffer }> = [...launcher.early];
  let heldBytes = held.reduce((sum, { chunk }) => sum + chunk.length, 0);
  const ended = new Set<OutputStream>();
  let deliver: ((stream: OutputStream, chunk: Buffer) => void) | undefined;
  let end: ((stream: OutputStream) => void) | undefined;
  for (const stream of ["stdout", "stderr"] as const) {
    const readable = child[stream] as NonNullable<(typeof child)[typeof stream]>;
    readable.on("data", (chunk: Buffer) => {
      if (deliver) return deliver(stream, chunk);
      heldBytes += chunk.length;
      if (heldBytes <= unsupervisedOutputBytes) held.push({ stream, chunk });
      else killGroup(child);
    });
    readable.on("end", () => (end ? end(stream) : ended.add(stream)));
    // A launcher that died before it was taken may have closed its output already.
    if (readable.readableEnded) ended.add(stream);
  }
  // Bubblewrap reads its options and the seccomp program once it runs; the pipes hold them
  // until then. If it fails before reading them, the write fails with EPIPE: its exit says why.
  for (const [fd, data] of [
    [sandboxArgsFd, command.fdArgs.map((arg) => `${arg}\0`).join("")],
    [sandboxSeccompFd, command.seccomp],
  ] as const) {
    (child.stdio[fd] as Writable).end(data);
  }
  if (!exited) launcher.start(command.args.slice(fixed.length));

  let supervised = false;
  return {
    get exited() {
      return exited;
    },
    async discard() {
      supervised = true;
      killGroup(child);
      await host.launchers.finish(launcher);
    },
    async supervise(bounds) {
      if (supervised) throw new Error("a sandbox is supervised once");
      supervised = true;
      const started = performance.now();
      const outcome = emptyOutcome();
      const sink = createOutputSink(bounds.outputLimits ?? defaultOutputLimits, bounds.onOutput);
      const kill = (reason: "timedOut" | "cancelled" | "outputFlooded") => {
        if (exited) return;
        outcome[reason] = true;
        killGroup(child);
        void launcher.cgroup.killAll();
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
          launcher.cgroup.oomKilled(),
          launcher.cgroup.tasksLimitReached(),
        ]);
        outcome.outOfMemory = code === heapOutOfMemoryExit || oomKilled;
        outcome.tasksLimitReached = tasksLimitReached;
      } finally {
        clearTimeout(timer);
        bounds.signal?.removeEventListener("abort", onAbort);
        await host.launchers.finish(launcher);
      }
      outcome.durationMs = Math.round(performance.now() - started);
      return outcome;
    },
  };
}

function emptyOutcome(): SandboxOutcome {
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

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {}
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
