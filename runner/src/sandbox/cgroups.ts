import { readFileSync } from "node:fs";
import { access, mkdir, readdir, readFile, rmdir, stat, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { processExists } from "./process-exists.js";

/** This process's own cgroup directories (children are created below them). */
export interface CgroupMounts {
  /** cgroup v1 `memory` hierarchy, at this process's cgroup. */
  memoryV1?: string | undefined;
  /** cgroup v1 `pids` hierarchy, at this process's cgroup. */
  pidsV1?: string | undefined;
  /** cgroup v2 unified hierarchy, at this process's cgroup. */
  unified?: string | undefined;
}

/** The cgroups of one sandbox; whatever the host could not provide is false. */
export interface SandboxCgroup {
  memory: boolean;
  pids: boolean;
  /** Why a controller is unavailable, for the warning at start. */
  problems: { memory?: string; pids?: string };
  /** Files the starter writes its pid into. */
  procsFiles: string[];
  /** Sets the memory and task limits (a reused cgroup may have had others). */
  applyLimits(limits: CgroupLimits): Promise<void>;
  /**
   * Takes the current OOM-kill and task-limit counters as the zero of `oomKilled` and
   * `tasksLimitReached`: the kernel's counters only grow, and a reused cgroup keeps them.
   */
  resetCounters(): Promise<void>;
  /** The kernel OOM killer killed a task of this cgroup since the last `resetCounters`. */
  oomKilled(): Promise<boolean>;
  /** A fork or thread creation hit the task limit since the last `resetCounters`. */
  tasksLimitReached(): Promise<boolean>;
  /**
   * SIGKILLs every task still in the cgroups but `keep` (the resident starter): the kill of
   * the sandbox's own process is the first line, this catches what escaped it.
   */
  killAll(keep?: number): Promise<void>;
  /**
   * Resolves once no task but `keep` is left (killing stragglers), false if some remain
   * after `timeoutMs` (default 2 s): only then may the cgroup be reused or removed.
   */
  drain(options?: { timeoutMs?: number; keep?: number | undefined }): Promise<boolean>;
  /** Removes the directories once their tasks are gone. */
  remove(): Promise<void>;
}

/** What a sandbox cgroup limits. */
export interface CgroupLimits {
  memoryBytes: number;
  tasks: number;
}

/**
 * Finds the hierarchies from /proc/self/mountinfo and /proc/self/cgroup: for each the mount
 * point plus this process's path below the mount's root (which differs in a cgroup namespace).
 */
export function findCgroupMounts(mountinfo: string, selfCgroup: string): CgroupMounts {
  const paths = new Map<string, string>();
  for (const line of selfCgroup.split("\n")) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const controllers = match[1] === "" ? ["(unified)"] : (match[1] as string).split(",");
    for (const controller of controllers) paths.set(controller, match[2] as string);
  }
  const mounts: CgroupMounts = {};
  for (const line of mountinfo.split("\n")) {
    const [before, after] = line.split(" - ");
    if (!before || !after) continue;
    const fields = before.split(" ");
    const [fsType, , superOptions = ""] = after.split(" ");
    const root = fields[3] ?? "/";
    const mountPoint = fields[4] ?? "";
    const below = (path: string | undefined) => {
      if (path === undefined || !(path === root || path.startsWith(`${root}/`) || root === "/")) {
        return undefined;
      }
      return join(mountPoint, posix.relative(root, path));
    };
    if (fsType === "cgroup2") mounts.unified ??= below(paths.get("(unified)"));
    if (fsType !== "cgroup") continue;
    const options = superOptions.split(",");
    if (options.includes("memory")) mounts.memoryV1 ??= below(paths.get("memory"));
    if (options.includes("pids")) mounts.pidsV1 ??= below(paths.get("pids"));
  }
  return mounts;
}

const groupDir = "bifrost-sandboxes";

/**
 * Creates `<own cgroup>/bifrost-sandboxes/<name>` in each usable hierarchy and applies the
 * limits (null: create and check only). v1 memory gets `memory.limit_in_bytes` and, where
 * swap accounting exists, the same `memory.memsw.limit_in_bytes` so swap is no way around it;
 * v2 gets `memory.max` and `memory.swap.max = 0`, but only below a subtree where the memory
 * and pids controllers are (or can be) enabled.
 */
export async function createCgroupDirs(
  mounts: CgroupMounts,
  name: string,
  limits: { memoryBytes: number; tasks: number } | null,
): Promise<SandboxCgroup> {
  const problems: SandboxCgroup["problems"] = {};
  const dirs: CgroupMounts & { memory?: string | undefined; pids?: string | undefined } = {};
  const attempt = async (kind: "memory" | "pids", base: string | undefined, setup: SetUp) => {
    if (!base) {
      problems[kind] ??= `no cgroup ${kind} hierarchy is mounted for this process`;
      return undefined;
    }
    const dir = join(base, groupDir, name);
    try {
      await mkdir(dir, { recursive: true });
      await setup(dir);
      return dir;
    } catch (error) {
      problems[kind] = `${dir}: ${(error as Error).message}`;
      await rmdir(dir).catch(() => {});
      return undefined;
    }
  };
  dirs.memory = await attempt("memory", mounts.memoryV1, async (dir) => {
    if (!limits) return;
    await writeFile(join(dir, "memory.limit_in_bytes"), String(limits.memoryBytes));
    await writeOptional(join(dir, "memory.memsw.limit_in_bytes"), String(limits.memoryBytes));
  });
  dirs.pids = await attempt("pids", mounts.pidsV1, async (dir) => {
    if (limits) await writeFile(join(dir, "pids.max"), String(limits.tasks));
  });
  if ((!dirs.memory || !dirs.pids) && mounts.unified) {
    dirs.unified = await attempt(dirs.memory ? "pids" : "memory", mounts.unified, async (dir) => {
      await enableControllers(mounts.unified as string);
      if (!dirs.memory) {
        await access(join(dir, "memory.max"));
        if (limits) await writeFile(join(dir, "memory.max"), String(limits.memoryBytes));
        if (limits) await writeOptional(join(dir, "memory.swap.max"), "0");
      }
      if (!dirs.pids) {
        await access(join(dir, "pids.max"));
        if (limits) await writeFile(join(dir, "pids.max"), String(limits.tasks));
      }
    });
    if (dirs.unified) {
      delete problems.memory;
      delete problems.pids;
    }
  }
  const memoryDir = dirs.memory ?? dirs.unified;
  const pidsDir = dirs.pids ?? dirs.unified;
  const all = [...new Set([dirs.memory, dirs.pids, dirs.unified])].filter(
    (dir): dir is string => dir !== undefined,
  );
  const counter = async (dir: string | undefined, file: string, key: string) => {
    if (!dir) return 0;
    const text = readControlFile(join(dir, file));
    return Number(new RegExp(`^${key} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
  };
  const ooms = async () =>
    (await counter(dirs.memory, "memory.oom_control", "oom_kill")) +
    (await counter(dirs.unified, "memory.events", "oom_kill"));
  const taskLimitHits = () => counter(pidsDir, "pids.events", "max");
  const tasks = async (keep?: number) => {
    const pids = new Set<string>();
    for (const procs of all.map((dir) => readControlFile(join(dir, "cgroup.procs")))) {
      for (const pid of procs.split("\n")) if (pid && pid !== String(keep)) pids.add(pid);
    }
    return pids;
  };
  const killAll = async (keep?: number) => {
    for (const pid of await tasks(keep)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {}
    }
  };
  let applied = limits;
  let zero = { ooms: 0, taskLimitHits: 0 };
  return {
    memory: memoryDir !== undefined,
    pids: pidsDir !== undefined,
    problems,
    procsFiles: all.map((dir) => join(dir, "cgroup.procs")),
    applyLimits: async (next) => {
      if (applied?.memoryBytes !== next.memoryBytes && memoryDir) {
        await writeMemoryLimit(dirs, next.memoryBytes, applied?.memoryBytes);
      }
      if (applied?.tasks !== next.tasks && pidsDir) {
        await writeFile(join(pidsDir, "pids.max"), String(next.tasks));
      }
      applied = next;
    },
    resetCounters: async () => {
      zero = { ooms: await ooms(), taskLimitHits: await taskLimitHits() };
    },
    oomKilled: async () => (await ooms()) > zero.ooms,
    tasksLimitReached: async () => (await taskLimitHits()) > zero.taskLimitHits,
    killAll,
    drain: async ({ timeoutMs = 2000, keep } = {}) => {
      // A task leaves its cgroup when it is reaped, which trails the exit the runner sees.
      const deadline = performance.now() + timeoutMs;
      for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
        if ((await tasks(keep)).size === 0) return true;
        if (performance.now() > deadline) return false;
        await killAll(keep);
        await sleep(wait);
      }
    },
    remove: async () => {
      for (const dir of all) await removeWhenEmpty(dir);
    },
  };
}

// v1 keeps memory.memsw.limit_in_bytes >= memory.limit_in_bytes at every step: raise the
// swap-inclusive limit first, lower it last.
async function writeMemoryLimit(
  dirs: { memory?: string | undefined; unified?: string | undefined },
  bytes: number,
  previous: number | undefined,
): Promise<void> {
  if (!dirs.memory) {
    await writeFile(join(dirs.unified as string, "memory.max"), String(bytes));
    await writeOptional(join(dirs.unified as string, "memory.swap.max"), "0");
    return;
  }
  const limit = join(dirs.memory, "memory.limit_in_bytes");
  const memsw = join(dirs.memory, "memory.memsw.limit_in_bytes");
  if (previous !== undefined && bytes > previous) {
    await writeOptional(memsw, String(bytes));
    await writeFile(limit, String(bytes));
  } else {
    await writeFile(limit, String(bytes));
    await writeOptional(memsw, String(bytes));
  }
}

type SetUp = (dir: string) => Promise<void>;

/**
 * Reads a cgroup control file ("" if it is gone). Synchronously on purpose: cgroupfs is
 * answered from kernel memory in microseconds, while the promise API's open, stat, read and
 * close are four trips through the thread pool, and these reads come several per sandbox.
 */
function readControlFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * Removes per-sandbox cgroups a crashed runner left behind: only empty ones (rmdir refuses
 * the others) older than `minAgeMs`, so another runner's freshly prepared one is spared, and
 * of the pooled ones (`pool-<pid>-<n>`) those whose runner process is gone: a live runner
 * keeps its idle pool for as long as it runs.
 */
export async function sweepStaleCgroups(mounts: CgroupMounts, minAgeMs = 600_000) {
  for (const base of [mounts.memoryV1, mounts.pidsV1, mounts.unified]) {
    if (!base) continue;
    const group = join(base, groupDir);
    for (const name of await readdir(group).catch(() => [] as string[])) {
      const pooledBy = /^pool-(\d+)-/.exec(name)?.[1];
      if (pooledBy) {
        // A pool whose runner is gone: stale at once (a runner that finds a pooled cgroup
        // removed under it makes a new one, see resource-limits.ts).
        if (!processExists(Number(pooledBy))) await rmdir(join(group, name)).catch(() => {});
        continue;
      }
      if (!name.startsWith("run-")) continue;
      const info = await stat(join(group, name)).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > minAgeMs)
        await rmdir(join(group, name)).catch(() => {});
    }
  }
}

async function writeOptional(path: string, value: string): Promise<void> {
  try {
    await writeFile(path, value);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

// v2 only lets a child use a controller its parent lists in cgroup.subtree_control, and
// refuses that for a non-root cgroup that itself holds processes (the runner): the operator
// must then delegate a subtree (systemd Delegate=yes, or move the runner into a leaf first).
async function enableControllers(own: string): Promise<void> {
  for (const dir of [own, join(own, groupDir)]) {
    const enabled = await readFile(join(dir, "cgroup.subtree_control"), "utf8");
    const missing = ["memory", "pids"].filter((c) => !enabled.split(/\s+/).includes(c));
    if (missing.length === 0) continue;
    await writeFile(join(dir, "cgroup.subtree_control"), missing.map((c) => `+${c}`).join(" "));
  }
}

// A cgroup can only be removed once its last task has been reaped, which trails the exit
// the runner sees by a moment.
async function removeWhenEmpty(dir: string): Promise<void> {
  const deadline = performance.now() + 2000;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY") throw error;
      if (performance.now() > deadline) throw new Error(`cgroup ${dir} still has tasks after 2 s`);
      await sleep(wait);
    }
  }
}
