import { readFile } from "node:fs/promises";

/** CPU time used so far, in milliseconds. */
export interface CpuSnapshot {
  /** This process (with the control plane, the runner and the client in it). */
  self: number;
  /** Every CPU of the machine, busy: the Deno processes, PostgreSQL, NATS, other programs. */
  machine: number;
  /**
   * CPU time the hypervisor gave to other guests while this one wanted it (steal): not work of
   * ours, but a sign the figures of that phase are skewed by the host.
   */
  stolen: number;
}

/** USER_HZ: the unit of /proc's CPU times, 100 on every Linux architecture Bifrost runs on. */
const ticksPerSecond = 100;

/** Reads the CPU times (Linux /proc). */
export async function cpuSnapshot(): Promise<CpuSnapshot> {
  const [cpu = ""] = (await readFile("/proc/stat", "utf8")).split("\n");
  const times = cpu.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: idle, iowait and steal are not work.
  const busy = [0, 1, 2, 5, 6].reduce((sum, i) => sum + (times[i] ?? 0), 0);
  const usage = process.cpuUsage();
  return {
    self: (usage.user + usage.system) / 1000,
    machine: (busy * 1000) / ticksPerSecond,
    stolen: ((times[7] ?? 0) * 1000) / ticksPerSecond,
  };
}

/** CPU time used since `start`, per operation when `operations` is given. */
export async function cpuSince(start: CpuSnapshot, operations = 1): Promise<CpuSnapshot> {
  const now = await cpuSnapshot();
  return {
    self: (now.self - start.self) / operations,
    machine: (now.machine - start.machine) / operations,
    stolen: (now.stolen - start.stolen) / operations,
  };
}

/** "CPU per run: … ms in this process, … ms on the whole machine[, … ms stolen by the host]". */
export function formatCpu(cpu: CpuSnapshot): string {
  const stolen = cpu.stolen >= 0.05 ? `, ${cpu.stolen.toFixed(1)} ms stolen by the host` : "";
  return `CPU per run: ${cpu.self.toFixed(1)} ms this process, ${cpu.machine.toFixed(1)} ms machine${stolen}`;
}
