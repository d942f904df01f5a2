import { type ChildProcess, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import type { SandboxCgroup } from "./cgroups.js";
import type { LimitsLogger, ProcessLimits, ResourceLimiter } from "./resource-limits.js";
import { launchLine, wrapLaunch } from "./resource-limits.js";

/** Host tools a launcher is built from (see `wrapLaunch`). */
export interface LauncherTools {
  shPath: string;
  prlimitPath: string;
  setprivPath: string;
  hostUid: number | null;
}

/**
 * A process that has joined its own cgroup, set its rlimits and dropped to the sandbox's
 * host uid, and now waits to exec `file fixedArgs… <line>`. Used for exactly one sandbox.
 */
export interface Launcher {
  readonly child: ChildProcess;
  readonly cgroup: SandboxCgroup;
  readonly file: string;
  readonly fixedArgs: readonly string[];
  /** Set once the process has ended (a spare can die before use, e.g. its cgroup went away). */
  readonly exited: boolean;
  /** Output written before `start` (a launcher that failed says why), replayed to the sink. */
  readonly early: ReadonlyArray<{ stream: "stdout" | "stderr"; chunk: Buffer }>;
  /** Sends the rest of the command line: the launcher execs it at once. */
  start(args: readonly string[]): void;
}

/** Ready launchers for the sandboxes to come; see `createLauncherPool`. */
export interface LauncherPool {
  /**
   * A launcher for `[file, ...fixedArgs]` with `limits`: a spare when one matches and is
   * alive, else a new one. Taking one of the default kind starts its replacement.
   */
  take(limits: ProcessLimits, file: string, fixedArgs: readonly string[]): Promise<Launcher>;
  /** Kills what is left of a used launcher and gives its cgroup back once empty. */
  finish(launcher: Launcher): Promise<void>;
  /** The launchers waiting right now (for inspection). */
  waiting(): readonly Launcher[];
  /** Kills the spares and removes the pooled cgroups. */
  close(): Promise<void>;
}

const earlyOutputBytes = 64 * 1024;

/**
 * Spawning a process from the runner (a large Node process), joining cgroups and the exec
 * chain sh → prlimit → setpriv cost the sandbox ~10 ms before bubblewrap even runs. A pool
 * does that ahead of time: it keeps `spares` launchers of the default kind waiting, each in
 * its own cgroup, so a job pays only for bubblewrap and Deno. A launcher is never reused:
 * after its one sandbox it is gone, and its cgroup is reused only once empty.
 */
export function createLauncherPool(options: {
  tools: LauncherTools;
  limiter: ResourceLimiter;
  logger: LimitsLogger;
  /** Launchers kept waiting for the default kind (0: spawn each on demand). */
  spares: number;
  /** The kind kept in stock: the runner's limits, bubblewrap and its fixed arguments. */
  defaults?: { limits: ProcessLimits; file: string; fixedArgs: readonly string[] };
}): LauncherPool {
  const spares: Launcher[] = [];
  let refilling = 0;
  let closed = false;
  const defaultKey = options.defaults && kindKey(options.defaults);

  const spawnLauncher = async (
    limits: ProcessLimits,
    file: string,
    fixedArgs: readonly string[],
  ): Promise<Launcher> => {
    const cgroup = await options.limiter.acquire(limits);
    const launch = wrapLaunch(
      {
        ...options.tools,
        cgroupProcsFiles: cgroup.procsFiles,
        limits,
        limitTasksByRlimit: !cgroup.pids,
      },
      file,
      fixedArgs,
    );
    // An empty environment: bubblewrap's own environment stays readable inside the sandbox
    // as /proc/1/environ (measured: it leaked the runner's whole environment), --clearenv or
    // not. Detached: the sandbox is its own process group, killed as one.
    const child = spawn(launch.file, launch.args, {
      detached: true,
      env: {},
      cwd: "/",
      stdio: ["pipe", "pipe", "pipe", "pipe", "pipe"],
    });
    const early: Array<{ stream: "stdout" | "stderr"; chunk: Buffer }> = [];
    let earlyBytes = 0;
    const onEarly = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      if (earlyBytes >= earlyOutputBytes) return;
      earlyBytes += chunk.length;
      early.push({ stream, chunk });
    };
    const handlers = { stdout: onEarly("stdout"), stderr: onEarly("stderr") };
    child.stdout?.on("data", handlers.stdout);
    child.stderr?.on("data", handlers.stderr);
    let exited = false;
    child.once("exit", () => {
      exited = true;
    });
    // A spawn failure (no sh) surfaces as the launcher's exit; the error is in `early`.
    child.once("error", (error) => {
      exited = true;
      early.push({ stream: "stderr", chunk: Buffer.from(`${error.message}\n`) });
    });
    for (const stream of child.stdio)
      (stream as (Readable & Writable) | null)?.on("error", () => {});
    // Waiting launchers must not keep the runner (or a test) alive.
    setReferenced(child, false);
    return {
      child,
      cgroup,
      file,
      fixedArgs,
      get exited() {
        return exited;
      },
      early,
      start(args) {
        setReferenced(child, true);
        child.stdout?.off("data", handlers.stdout);
        child.stderr?.off("data", handlers.stderr);
        (child.stdin as Writable).end(launchLine(args));
      },
    };
  };

  const refill = () => {
    if (closed || !options.defaults) return;
    while (spares.length + refilling < options.spares) {
      refilling++;
      const { limits, file, fixedArgs } = options.defaults;
      spawnLauncher(limits, file, fixedArgs)
        .then((launcher) => {
          if (closed) void discard(launcher);
          else spares.push(launcher);
        })
        .catch((error: unknown) =>
          options.logger.warn({ err: error }, "could not prepare a spare sandbox launcher"),
        )
        .finally(() => {
          refilling--;
        });
    }
  };

  const discard = async (launcher: Launcher) => {
    killGroup(launcher.child);
    await options.limiter.release(launcher.cgroup);
  };

  refill();
  return {
    async take(limits, file, fixedArgs) {
      const key = kindKey({ limits, file, fixedArgs });
      if (key === defaultKey) {
        for (let spare = spares.shift(); spare; spare = spares.shift()) {
          if (!spare.exited) {
            refill();
            return spare;
          }
          void discard(spare);
        }
      }
      const launcher = await spawnLauncher(limits, file, fixedArgs);
      if (key === defaultKey) refill();
      return launcher;
    },
    async finish(launcher) {
      killGroup(launcher.child);
      await launcher.cgroup.killAll();
      // Emptying and reuse happen after the result is out.
      void options.limiter.release(launcher.cgroup);
    },
    waiting: () => [...spares],
    async close() {
      closed = true;
      await Promise.all(spares.splice(0).map(discard));
      await options.limiter.close();
    },
  };
}

function kindKey(kind: { limits: ProcessLimits; file: string; fixedArgs: readonly string[] }) {
  return JSON.stringify([kind.limits, kind.file, kind.fixedArgs]);
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {}
}

function setReferenced(child: ChildProcess, referenced: boolean): void {
  if (referenced) child.ref();
  else child.unref();
  for (const stream of child.stdio) {
    const handle = stream as { ref?: () => void; unref?: () => void } | null;
    if (referenced) handle?.ref?.();
    else handle?.unref?.();
  }
}
