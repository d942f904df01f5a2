import { spawn } from "node:child_process";
import type { Writable } from "node:stream";
import type { SandboxCgroup } from "./cgroups.js";
import { findExecutable } from "./deno-binary.js";
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
  wrapLaunch,
} from "./resource-limits.js";
import {
  type SandboxCommand,
  sandboxArgsFd,
  sandboxSeccompFd,
  sandboxUid,
} from "./sandbox-command.js";

/** Host tools and limits shared by every sandbox of this runner; create once at start. */
export interface SandboxHost {
  shPath: string;
  prlimitPath: string;
  setprivPath: string;
  /** Host uid bubblewrap runs as (null: the runner's own; see `LaunchWrapper.hostUid`). */
  hostUid: number | null;
  limiter: ResourceLimiter;
}

/**
 * Finds sh, prlimit and setpriv (util-linux), probes the cgroups (logging what degrades) and,
 * when the runner is root, runs sandboxes as host uid 65534 rather than root.
 */
export async function createSandboxHost(logger: LimitsLogger): Promise<SandboxHost> {
  const isRoot = process.getuid?.() === 0;
  return {
    shPath: findExecutable("/bin/sh"),
    prlimitPath: findExecutable("prlimit"),
    setprivPath: findExecutable("setpriv"),
    hostUid: isRoot ? sandboxUid : null,
    limiter: await createResourceLimiter(logger),
  };
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
  const cgroup = await options.host.limiter.prepare(options.limits);
  try {
    await runInCgroup(options, cgroup, outcome);
    outcome.outOfMemory = outcome.exitCode === heapOutOfMemoryExit || (await cgroup.oomKilled());
    outcome.tasksLimitReached = await cgroup.tasksLimitReached();
  } finally {
    await cgroup.killAll();
    await cgroup.remove();
  }
  outcome.durationMs = Math.round(performance.now() - started);
  return outcome;
}

async function runInCgroup(
  options: RunSandboxedOptions,
  cgroup: SandboxCgroup,
  outcome: SandboxOutcome,
): Promise<void> {
  const { host, command } = options;
  const launch = wrapLaunch(
    {
      shPath: host.shPath,
      prlimitPath: host.prlimitPath,
      setprivPath: host.setprivPath,
      cgroupProcsFiles: cgroup.procsFiles,
      limits: options.limits,
      limitTasksByRlimit: !cgroup.pids,
      hostUid: host.hostUid,
    },
    command.file,
    command.args,
  );
  // An empty environment: bubblewrap's own environment stays readable inside the sandbox as
  // /proc/1/environ (measured: it leaked the runner's whole environment), --clearenv or not.
  const child = spawn(launch.file, launch.args, {
    detached: true,
    env: {},
    cwd: "/",
    stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"],
  });
  const sink = createOutputSink(options.outputLimits ?? defaultOutputLimits, options.onOutput);
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  const kill = (reason: "timedOut" | "cancelled" | "outputFlooded") => {
    if (exited) return;
    outcome[reason] = true;
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {}
    void cgroup.killAll();
  };
  const timer = setTimeout(() => kill("timedOut"), options.timeoutMs);
  const onAbort = () => kill("cancelled");
  options.signal?.addEventListener("abort", onAbort, { once: true });

  // If bubblewrap fails before reading them, the write fails with EPIPE: its exit says why.
  for (const [fd, data] of [
    [sandboxArgsFd, command.fdArgs.map((arg) => `${arg}\0`).join("")],
    [sandboxSeccompFd, command.seccomp],
  ] as const) {
    const pipe = child.stdio[fd] as Writable;
    pipe.on("error", () => {});
    pipe.end(data);
  }
  for (const stream of ["stdout", "stderr"] as const) {
    const readable = child[stream] as NonNullable<(typeof child)[typeof stream]>;
    readable.on("data", (chunk: Buffer) => {
      if (!sink.push(stream, chunk)) kill("outputFlooded");
    });
    readable.on("end", () => sink.end(stream));
  }
  try {
    await new Promise<void>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => {
        outcome.exitCode = code;
        outcome.signal = signal;
        resolve();
      });
    });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
  outcome.outputTruncated = sink.truncated;
  outcome.outputFlooded ||= sink.flooded;
}
