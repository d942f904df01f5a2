import { randomBytes } from "node:crypto";
import { access, readFile } from "node:fs/promises";
import {
  type CgroupMounts,
  createCgroupDirs,
  findCgroupMounts,
  type SandboxCgroup,
  sweepStaleCgroups,
} from "./cgroups.js";

/** Limits for one sandboxed process. */
export interface ProcessLimits {
  /** Whole-sandbox memory (heap, ArrayBuffers, native, tmpfs pages): cgroup memory limit. */
  memoryBytes: number;
  /**
   * Tasks (processes and threads: every Worker is a thread): cgroup pids.max. Deno itself
   * starts about one thread per core, so leave room on big hosts.
   */
  tasks: number;
  /** Open files (RLIMIT_NOFILE). */
  openFiles: number;
  /** Largest file the process may write (RLIMIT_FSIZE), e.g. in the Deno cache. */
  fileSizeBytes: number;
}

/** Defaults sized for one workflow execution with a 256 MB heap. */
export const defaultProcessLimits: ProcessLimits = {
  memoryBytes: 512 * 1024 * 1024,
  tasks: 256,
  openFiles: 1024,
  fileSizeBytes: 256 * 1024 * 1024,
};

/** Where warnings about missing host support go (a pino logger fits). */
export interface LimitsLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

/** What this host can enforce, probed once at start, and its pool of sandbox cgroups. */
export interface ResourceLimiter {
  readonly memoryCgroup: boolean;
  readonly pidsCgroup: boolean;
  /**
   * A cgroup for one sandbox (whatever the host supports) with `limits` applied and its
   * counters zeroed: a free one of the pool, else a new one. Creating and removing cgroups
   * costs several milliseconds per sandbox (cgroup v1 more), reusing an empty one none.
   * Never throws for missing support: it logs and returns fewer files to join.
   */
  acquire(limits: ProcessLimits): Promise<SandboxCgroup>;
  /**
   * Takes a cgroup back once every task in it is gone: only an empty cgroup is reused. One
   * that does not empty is left out of the pool, with a warning.
   */
  release(cgroup: SandboxCgroup): Promise<void>;
  /** Removes the pooled cgroups (at shutdown). */
  close(): Promise<void>;
}

/**
 * Probes the cgroup hierarchies this process may create children in (v1 `memory` and `pids`
 * as root, or a delegated v2 subtree with both controllers), and logs one warning per limit
 * the host cannot enforce: without a memory cgroup only the V8 heap is capped (ArrayBuffers
 * and native memory are not); without a pids cgroup the task cap falls back to RLIMIT_NPROC,
 * which counts every process of the host uid (all sandboxes together) and does nothing when
 * the sandbox runs as host root.
 */
export async function createResourceLimiter(
  logger: LimitsLogger,
  mounts?: CgroupMounts,
): Promise<ResourceLimiter> {
  const found =
    mounts ??
    findCgroupMounts(
      await readFile("/proc/self/mountinfo", "utf8"),
      await readFile("/proc/self/cgroup", "utf8"),
    );
  await sweepStaleCgroups(found);
  const probe = await createCgroupDirs(found, `probe-${randomBytes(4).toString("hex")}`, null);
  const memoryCgroup = probe.memory;
  const pidsCgroup = probe.pids;
  await probe.remove();
  if (!memoryCgroup) {
    logger.warn(
      { reason: probe.problems.memory },
      "no memory cgroup: only the V8 heap of sandboxes is limited, not ArrayBuffers or native memory",
    );
  }
  if (!pidsCgroup) {
    logger.warn(
      { reason: probe.problems.pids },
      "no pids cgroup: sandbox task limits fall back to RLIMIT_NPROC, shared by every sandbox of the host uid",
    );
  }
  // The pid lets a later runner tell a dead runner's pool from a live one's (cgroups.ts).
  const prefix = `pool-${process.pid}-${randomBytes(3).toString("hex")}`;
  let created = 0;
  const free: SandboxCgroup[] = [];
  return {
    memoryCgroup,
    pidsCgroup,
    acquire: async (limits) => {
      const wanted = { memoryBytes: limits.memoryBytes, tasks: limits.tasks };
      for (let reused = free.pop(); reused; reused = free.pop()) {
        try {
          await Promise.all(reused.procsFiles.map((file) => access(file)));
          await reused.applyLimits(wanted);
          await reused.resetCounters();
          return reused;
        } catch (error) {
          // Removed under us (another runner's sweep, an operator): forget it.
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        }
      }
      const cgroup = await createCgroupDirs(found, `${prefix}-${++created}`, null);
      await cgroup.applyLimits(wanted);
      await cgroup.resetCounters();
      return cgroup;
    },
    release: async (cgroup) => {
      if (await cgroup.drain()) {
        free.push(cgroup);
        return;
      }
      logger.warn(
        { cgroup: cgroup.procsFiles },
        "sandbox cgroup still has tasks 2 s after its sandbox ended: not reused",
      );
    },
    close: async () => {
      for (const cgroup of free.splice(0)) await cgroup.remove().catch(() => {});
    },
  };
}
