import { measureThroughput } from "./bench-stats.js";
import { cpuSince, cpuSnapshot } from "./cpu-usage.js";
import { createDenoBaselines } from "./deno-baselines.js";

const d = await createDenoBaselines();
const ops: Record<string, () => Promise<void>> = {
  raw: d.raw,
  sandbox: () => d.sandboxed(),
  runner: d.runnerExecution,
};
for (const op of Object.values(ops)) for (let i = 0; i < 5; i++) await op();
const n = Number(process.env.N ?? 150);
const out: string[] = [];
for (const [name, op] of Object.entries(ops)) {
  const cpu = await cpuSnapshot();
  const rate = await measureThroughput(n, 2, op);
  const used = await cpuSince(cpu, n);
  out.push(`${name} ${used.machine.toFixed(1)}ms ${rate.toFixed(0)}/s`);
}
console.log(process.env.LABEL, out.join(" | "));
await d.cleanup();
process.exit(0);
