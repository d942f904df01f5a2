import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, fchmodSync, openSync, rmSync, writeFileSync } from "node:fs";
import { chmod, chown } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import type { SandboxCgroup } from "./cgroups.js";
import type { OutputStream } from "./output-lines.js";

/** Host tools a starter is built from. */
export interface StarterTools {
  shPath: string;
  setprivPath: string;
  /**
   * Host uid/gid the starter's loop and every sandbox run as (unprivileged; each sandbox in
   * its own user namespace), or null to keep the runner's. With root, sandbox uid 65534 maps
   * to host root: a sandbox escape would be host root and RLIMIT_NPROC would not apply.
   */
  hostUid: number | null;
  /**
   * util-linux `unshare`, to give starters that need no network an empty network namespace
   * of their own (it takes root); null: every sandbox gets one from bubblewrap instead.
   */
  unsharePath: string | null;
}

/**
 * The network a starter's sandboxes get: the host's (for sandboxes that declare hosts), or an
 * empty namespace the starter made for itself when it started ("own"), which its sandboxes
 * share one after another, never at once. bubblewrap's --unshare-net made and dismantled one
 * per sandbox: ~1–1.4 ms of machine CPU each (docs/design-notes.md).
 */
export type StarterNetwork = "host" | "own";

/** The rlimits of one sandbox, set by the starter's fork before it drops privileges. */
export interface LaunchLimits {
  /** RLIMIT_NOFILE. */
  openFiles: number;
  /** RLIMIT_FSIZE, rounded down to the shell's 512-byte blocks. */
  fileSizeBytes: number;
  /** RLIMIT_NPROC, only where no pids cgroup limits the tasks (null: not set). */
  tasks: number | null;
}

/** One sandbox for a starter to fork: its argv and the files it gets as fd 3 and fd 4. */
export interface LaunchRequest {
  /** Names of files in the starter's directory, opened read-only as fd 3 and fd 4. */
  fd3File: string;
  fd4File: string;
  limits: LaunchLimits;
  /** The command, first word the program: words hold no whitespace (see `launchWords`). */
  argv: readonly string[];
}

/** How a run of a starter ended: the shell's `wait` status (128 + n for signal n). */
export interface RunEnd {
  /** null when the starter itself died before it could say. */
  status: number | null;
}

/** One sandbox a starter forked. */
export interface StarterRun {
  /** Set once the run has ended and both output streams are complete. */
  readonly ended: boolean;
  /** Resolves when the run has ended and all its output was delivered. */
  readonly done: Promise<RunEnd>;
  /** SIGKILLs the forked process (bubblewrap: its sandbox dies with it). */
  kill(): void;
}

/** Where a run's output goes, as it comes. */
export interface RunOutput {
  onData(stream: OutputStream, chunk: Buffer): void;
  onEnd(stream: OutputStream): void;
}

/**
 * A resident process that forks sandboxes, one at a time, from inside its cgroup. See
 * `spawnStarter`.
 */
export interface SandboxStarter {
  readonly cgroup: SandboxCgroup;
  readonly network: StarterNetwork;
  readonly pid: number | undefined;
  /** Resolves once it waits for work; rejects (saying why) if it died before that. */
  readonly ready: Promise<void>;
  /** It has exited (it can no longer start anything). */
  readonly exited: boolean;
  /** Forks one sandbox. Only once the previous run has ended. */
  launch(request: LaunchRequest, output: RunOutput): StarterRun;
  /** Kills it and whatever it started. */
  kill(): void;
}

// POSIX sh, not a shell string: every value arrives as a positional parameter, so nothing
// is ever parsed as shell syntax. Joining the cgroups comes first (the only step that needs
// the runner's privileges), so every process forked later (every thread Deno starts) is
// counted; the parent-death signal makes the starter die with the runner, and bubblewrap
// (--die-with-parent) with it.
const joinScript = [
  'n="$1"; shift',
  'while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done',
  'exec "$@"',
].join("\n");

// The resident loop, already the host uid. Per line: a nonce, the files for fd 3 and 4
// (relative to its directory), rlimits, and the command as words (split, never globbed,
// quoted or expanded further). The fork opens the files, lowers the rlimits, leaves the
// directory and execs; stdin is /dev/null and the control pipe (fd 3) is replaced, so the
// sandbox holds no way to talk to the starter. Its stdout and stderr are the starter's own:
// nonce markers around each run tell the runner where a run's output begins and ends (a
// sandbox never sees its nonce, so it cannot forge them). Status lines go on fd 3.
const loopScript = [
  "set -f",
  "echo ready >&3",
  "while read -r nonce fd3 fd4 nofile fsize nproc command; do",
  "  printf '\\000B%s\\000' \"$nonce\"; printf '\\000B%s\\000' \"$nonce\" >&2",
  "  (",
  '    cd / && unset OLDPWD && ulimit -c 0 && ulimit -n "$nofile" && ulimit -f "$fsize" || exit 125',
  '    if [ "$nproc" != - ]; then ulimit -p "$nproc" || exit 125; fi',
  "    exec $command",
  '  ) 3<"$fd3" 4<"$fd4" </dev/null &',
  '  echo "started $!" >&3',
  // The shell's own report of a killed job ("Killed") is not the sandbox's output.
  "  wait $! 2>/dev/null",
  '  echo "ended $?" >&3',
  "  printf '\\000E%s\\000' \"$nonce\"; printf '\\000E%s\\000' \"$nonce\" >&2",
  "done",
].join("\n");

/**
 * The starter's argv (pure): joins `procsFiles`, for an "own" network unshares a network
 * namespace (as root: the namespace belongs to the host's user namespace, so no sandbox,
 * whatever its own user namespace, can configure it: its loopback stays down), then drops to
 * `hostUid` (when set) with its parent-death signal for the loop. Nothing of the starter stays
 * root after that, and a sandbox costs no exec of setpriv: the fork execs bubblewrap itself.
 */
export function starterCommand(
  tools: StarterTools,
  procsFiles: readonly string[],
  network: StarterNetwork = "host",
): { file: string; args: string[] } {
  if (network === "own" && tools.unsharePath === null) {
    throw new Error("a starter with a network of its own needs unshare (util-linux) and root");
  }
  const unshare = network === "own" ? [tools.unsharePath as string, "--net", "--"] : [];
  const drop =
    tools.hostUid === null
      ? []
      : [`--reuid=${tools.hostUid}`, `--regid=${tools.hostUid}`, "--clear-groups"];
  return {
    file: tools.shPath,
    args: [
      "-c",
      joinScript,
      "sandbox-starter",
      String(procsFiles.length),
      ...procsFiles,
      ...unshare,
      tools.setprivPath,
      // A change of uid clears a parent-death signal set before it; setpriv sets it after
      // (checked: the loop dies with a SIGKILLed runner, runner-kill.integration.test.ts).
      "--pdeathsig",
      "KILL",
      ...drop,
      "--",
      tools.shPath,
      "-c",
      loopScript,
      "sandbox-starter",
    ],
  };
}

/** The line that makes a starter fork `request` under `nonce` (pure; validates every word). */
export function launchLine(nonce: string, request: LaunchRequest): string {
  const { limits } = request;
  for (const [name, value] of [
    ["open files", limits.openFiles],
    ["file size", limits.fileSizeBytes],
    ["tasks", limits.tasks ?? 1],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new Error(`sandbox ${name} limit ${value} must be a positive integer`);
    }
  }
  const words = [
    nonce,
    request.fd3File,
    request.fd4File,
    String(limits.openFiles),
    String(Math.floor(limits.fileSizeBytes / 512)),
    limits.tasks === null ? "-" : String(limits.tasks),
    ...request.argv,
  ];
  for (const word of words) {
    if (word.length === 0 || /\s/.test(word) || word.includes("\0")) {
      throw new Error(
        `sandbox argument ${JSON.stringify(word)} must be non-empty and hold no whitespace or NUL`,
      );
    }
  }
  return `${words.join(" ")}\n`;
}

/** The mode of the files a starter opens for its forks (see `prepareStarterDir`). */
export const starterFileMode = 0o640;

/**
 * Writes a new file of `starterFileMode` for a starter, synchronously (a few hundred bytes
 * into a directory on /dev/shm take microseconds; the promise API would be three trips
 * through the thread pool). The mode is set again after open because open's passes through
 * the runner's umask: under 077 the starters' group could not read the file.
 */
export function writeStarterFileSync(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, "wx", starterFileMode);
  try {
    fchmodSync(fd, starterFileMode);
    writeFileSync(fd, data);
  } catch (error) {
    // Never leave a partial file behind: a retry under the same name would find it (wx).
    rmSync(path, { force: true });
    throw error;
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes `dir` a starter directory: only the runner and the starters' loops may read it, and
 * only the runner may write it. With a `hostUid`, the loops run as that uid and gid, so the
 * directory becomes root's with that group, mode 2750 (the set-group-id bit gives every file
 * written into it the group): a loop can open a file of `starterFileMode`, but it cannot
 * create, rename or remove one, and no other uid can traverse the directory. The files hold
 * each sandbox's channel token until it has ended. Without a `hostUid`, mode 0700.
 */
export async function prepareStarterDir(dir: string, hostUid: number | null): Promise<void> {
  if (hostUid === null) {
    await chmod(dir, 0o700);
    return;
  }
  await chown(dir, 0, hostUid);
  await chmod(dir, 0o2750);
}

/** How long a starter may take to join its cgroup and start its loop. */
const defaultReadyTimeoutMs = 10_000;

/** Output a starter wrote before its first run (why it failed to start), kept up to this. */
const diagnosticBytes = 4096;

/**
 * Spawns a starter: a small shell that joins `cgroup` once, then forks each sandbox it is
 * asked for from inside it. Forking from the runner instead costs a copy of a large Node
 * process's page tables per sandbox (5–15 ms with the event loop blocked), and moving each
 * new process into cgroup v1 stalls it for an RCU grace period. A starter serves one sandbox
 * at a time; the pool (starter-pool.ts) reuses it only once its cgroup holds nothing else.
 * `dir` is its working directory, where the files of `LaunchRequest` are: the loop reads
 * them as `hostUid`, so prepare it with `prepareStarterDir`.
 */
export function spawnStarter(
  tools: StarterTools,
  cgroup: SandboxCgroup,
  dir: string,
  options: { readyTimeoutMs?: number; network?: StarterNetwork } = {},
): SandboxStarter {
  const readyTimeoutMs = options.readyTimeoutMs ?? defaultReadyTimeoutMs;
  const network = options.network ?? "host";
  const command = starterCommand(tools, cgroup.procsFiles, network);
  // An empty environment: bubblewrap's own environment stays readable inside the sandbox as
  // /proc/1/environ (measured: it leaked the runner's whole environment). Detached: the
  // starter and what it forked are a process group of their own, killed as one at the end.
  const child = spawn(command.file, command.args, {
    detached: true,
    env: {},
    cwd: dir,
    stdio: ["pipe", "pipe", "pipe", "pipe"],
  });
  for (const stream of child.stdio) {
    (stream as (Readable & Writable) | null)?.on("error", () => {});
  }
  let exited = false;
  let diagnostics = "";
  let run: RunState | undefined;
  let onReady: { resolve(): void; reject(error: Error): void } | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = { resolve, reject };
  });
  ready.catch(() => {});
  // A starter that neither says ready nor exits (a hung join or exec) is killed: its exit then
  // rejects `ready`, so nothing waits on it forever.
  const readyDeadline = setTimeout(() => {
    diagnostics += `not ready after ${readyTimeoutMs} ms; killed`;
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }
  }, readyTimeoutMs);
  readyDeadline.unref();

  const streams = { stdout: child.stdout as Readable, stderr: child.stderr as Readable };
  for (const name of ["stdout", "stderr"] as const) {
    streams[name].on("data", (chunk: Buffer) => {
      if (run) run.data(name, chunk);
      else if (diagnostics.length < diagnosticBytes) diagnostics += chunk.toString();
    });
  }
  let control = "";
  (child.stdio[3] as Readable).on("data", (chunk: Buffer) => {
    control += chunk.toString();
    for (let end = control.indexOf("\n"); end >= 0; end = control.indexOf("\n")) {
      const line = control.slice(0, end);
      control = control.slice(end + 1);
      if (line === "ready") {
        clearTimeout(readyDeadline);
        onReady?.resolve();
        // An idle starter must not keep the runner (or a test) alive.
        if (!run) setReferenced(child, false);
      } else if (line.startsWith("started ")) run?.started(Number(line.slice(8)));
      else if (line.startsWith("ended ")) run?.exited(Number(line.slice(6)));
    }
  });
  child.once("exit", () => {
    exited = true;
  });
  // After "close", not "exit": by then everything it (and its forks) wrote has been read.
  const onClose = () => {
    exited = true;
    clearTimeout(readyDeadline);
    onReady?.reject(
      new Error(
        `the sandbox starter exited before it was ready${diagnostics ? `: ${diagnostics.trim()}` : ""}`,
      ),
    );
    run?.starterDied();
  };
  child.once("close", onClose);
  child.once("error", (error) => {
    diagnostics += error.message;
    onClose();
  });

  return {
    cgroup,
    network,
    get pid() {
      return child.pid;
    },
    ready,
    get exited() {
      return exited;
    },
    launch(request, output) {
      if (run && !run.ended) throw new Error("a sandbox starter runs one sandbox at a time");
      const nonce = randomBytes(16).toString("hex");
      const line = launchLine(nonce, request);
      const state = createRunState(nonce, output, () => {
        if (run === state) setReferenced(child, false);
      });
      run = state;
      if (exited) {
        state.starterDied();
        return state.handle;
      }
      setReferenced(child, true);
      (child.stdin as Writable).write(line);
      return state.handle;
    },
    kill() {
      if (child.pid === undefined || exited) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    },
  };
}

interface RunState {
  readonly ended: boolean;
  readonly handle: StarterRun;
  data(stream: OutputStream, chunk: Buffer): void;
  started(pid: number): void;
  exited(status: number): void;
  starterDied(): void;
}

/**
 * The runner's side of one run: finds the run's output between its markers on each stream
 * (bytes before the begin marker are what came after an earlier run, dropped), and ends it
 * once the status and both end markers are in.
 */
function createRunState(nonce: string, output: RunOutput, onDone: () => void): RunState {
  const begin = Buffer.from(`\0B${nonce}\0`);
  const end = Buffer.from(`\0E${nonce}\0`);
  const phase: Record<OutputStream, "before" | "during" | "after"> = {
    stdout: "before",
    stderr: "before",
  };
  const pending: Record<OutputStream, Buffer> = {
    stdout: Buffer.alloc(0),
    stderr: Buffer.alloc(0),
  };
  let pid: number | undefined;
  let killWanted = false;
  let status: number | null | undefined;
  let ended = false;
  let resolveDone: (end: RunEnd) => void = () => {};
  const done = new Promise<RunEnd>((resolve) => {
    resolveDone = resolve;
  });

  const finishIfComplete = () => {
    if (ended || status === undefined) return;
    if (phase.stdout !== "after" || phase.stderr !== "after") return;
    ended = true;
    onDone();
    resolveDone({ status });
  };
  const endStream = (stream: OutputStream) => {
    if (phase[stream] === "after") return;
    if (phase[stream] === "during" && pending[stream].length > 0) {
      output.onData(stream, pending[stream]);
    }
    pending[stream] = Buffer.alloc(0);
    phase[stream] = "after";
    output.onEnd(stream);
  };
  const kill = () => {
    if (ended || status !== undefined) return;
    if (pid === undefined) {
      killWanted = true;
      return;
    }
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  };

  return {
    get ended() {
      return ended;
    },
    handle: {
      get ended() {
        return ended;
      },
      done,
      kill,
    },
    data(stream, chunk) {
      if (phase[stream] === "after") return;
      let buffer = pending[stream].length ? Buffer.concat([pending[stream], chunk]) : chunk;
      if (phase[stream] === "before") {
        const at = buffer.indexOf(begin);
        if (at < 0) {
          pending[stream] = keepPossiblePrefix(buffer, begin);
          return;
        }
        phase[stream] = "during";
        buffer = buffer.subarray(at + begin.length);
      }
      const at = buffer.indexOf(end);
      if (at >= 0) {
        if (at > 0) output.onData(stream, buffer.subarray(0, at));
        pending[stream] = Buffer.alloc(0);
        endStream(stream);
        finishIfComplete();
        return;
      }
      // Hold back only what could be the start of the end marker (it begins with a NUL).
      const held = keepPossiblePrefix(buffer, end);
      const deliver = buffer.subarray(0, buffer.length - held.length);
      if (deliver.length > 0) output.onData(stream, deliver);
      pending[stream] = held;
    },
    started(startedPid) {
      pid = startedPid;
      if (killWanted) kill();
    },
    exited(exitStatus) {
      status = exitStatus;
      finishIfComplete();
    },
    starterDied() {
      if (ended) return;
      if (status === undefined) status = null;
      endStream("stdout");
      endStream("stderr");
      finishIfComplete();
    },
  };
}

/** The tail of `buffer` that is a proper prefix of `marker` (to wait for more bytes). */
function keepPossiblePrefix(buffer: Buffer, marker: Buffer): Buffer {
  const from = Math.max(0, buffer.length - marker.length + 1);
  for (let at = buffer.indexOf(0, from); at >= 0; at = buffer.indexOf(0, at + 1)) {
    const tail = buffer.subarray(at);
    if (marker.subarray(0, tail.length).equals(tail)) return Buffer.from(tail);
  }
  return Buffer.alloc(0);
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
