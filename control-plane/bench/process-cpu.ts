import { readdir, readFile } from "node:fs/promises";

/**
 * Where the machine's CPU goes, by program: this process (control plane, runner and client),
 * the sandboxes it started (starters, bubblewrap, Deno: its descendants, live or reaped),
 * PostgreSQL, NATS, Redis, and everything else. Read from /proc (Linux), in milliseconds.
 */
export type ProcessCpu = Record<CpuOwner, number>;

export type CpuOwner = "this process" | "sandboxes" | "PostgreSQL" | "NATS" | "Redis" | "other";

export const cpuOwners: readonly CpuOwner[] = [
  "this process",
  "sandboxes",
  "PostgreSQL",
  "NATS",
  "Redis",
  "other",
];

/** USER_HZ, the unit of /proc's CPU times. */
const ticksPerSecond = 100;

interface Stat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime of the process itself. */
  own: number;
  /** cutime + cstime: its children it has reaped (and theirs, recursively). */
  reaped: number;
}

/** /proc/<pid>/stat, or undefined when the process is gone. */
async function readStat(pid: number): Promise<Stat | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // comm is in parentheses and may hold spaces or parentheses: split after the last ")".
  const close = text.lastIndexOf(")");
  const comm = text.slice(text.indexOf("(") + 1, close);
  const fields = text
    .slice(close + 2)
    .split(" ")
    .map(Number);
  // Fields after comm, from 0: state ppid … utime(11) stime(12) cutime(13) cstime(14).
  const tick = (i: number) => ((fields[i] ?? 0) * 1000) / ticksPerSecond;
  return { pid, ppid: fields[1] ?? 0, comm, own: tick(11) + tick(12), reaped: tick(13) + tick(14) };
}

/** The CPU used so far by each owner (cumulative, for differences). */
export async function processCpuSnapshot(): Promise<ProcessCpu> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  const stats = (await Promise.all(pids.map(readStat))).filter((s): s is Stat => !!s);
  const byPid = new Map(stats.map((s) => [s.pid, s]));
  const descendsFromSelf = (stat: Stat) => {
    for (let p = stat.ppid; p > 1; p = byPid.get(p)?.ppid ?? 0) {
      if (p === process.pid) return true;
    }
    return false;
  };
  const totals: ProcessCpu = {
    "this process": 0,
    sandboxes: 0,
    PostgreSQL: 0,
    NATS: 0,
    Redis: 0,
    other: 0,
  };
  for (const stat of stats) {
    if (stat.pid === process.pid) {
      totals["this process"] += stat.own;
      totals.sandboxes += stat.reaped;
    } else if (descendsFromSelf(stat)) {
      // A live descendant's own time and what it reaped; once it is reaped in turn, its
      // parent's reaped time holds both. A descendant's reaped time is counted here and,
      // since its own parent has not reaped it yet, nowhere else.
      totals.sandboxes += stat.own + stat.reaped;
    } else if (stat.comm === "postgres") {
      // The postmaster's reaped time holds the backends that have ended.
      totals.PostgreSQL += stat.own + (byPid.get(stat.ppid)?.comm === "postgres" ? 0 : stat.reaped);
    } else if (stat.comm === "nats-server") {
      totals.NATS += stat.own;
    } else if (stat.comm === "redis-server") {
      totals.Redis += stat.own;
    } else {
      totals.other += stat.own;
    }
  }
  return totals;
}

/** CPU per operation of each owner since `start`. */
export async function processCpuSince(start: ProcessCpu, operations: number): Promise<ProcessCpu> {
  const now = await processCpuSnapshot();
  const per = {} as ProcessCpu;
  for (const owner of cpuOwners) per[owner] = (now[owner] - start[owner]) / operations;
  return per;
}

/** "this process 19.7 · sandboxes 38.1 · PostgreSQL 6.0 · …" (ms per operation). */
export function formatProcessCpu(cpu: ProcessCpu): string {
  return cpuOwners.map((owner) => `${owner} ${cpu[owner].toFixed(1)}`).join(" · ");
}
