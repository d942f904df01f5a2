import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { startBenchControlPlane } from "./bench-control-plane.js";
import { startBenchRunner } from "./bench-runner.js";
import { timedPool } from "./bench-stats.js";
import { cpuSince, cpuSnapshot, formatCpu } from "./cpu-usage.js";
import { trivialWorkflowName } from "./deno-baselines.js";
import { preparePlatform } from "./measure-platform.js";
import { formatProcessCpu, processCpuSince, processCpuSnapshot } from "./process-cpu.js";

const natsUrl = "nats://127.0.0.1:4222";
const cp = await startBenchControlPlane({
  postgresUrl: "postgres://postgres@127.0.0.1:5432/postgres",
  redisUrl: "redis://127.0.0.1:6379",
  natsUrl,
});
const { organizationId, runnerKey } = await preparePlatform(cp as never);
const runner = await startBenchRunner({
  address: cp.address,
  natsUrl,
  names: cp.dispatch.names,
  runnerKey,
  capacity: 2,
  prepared: true,
});
const start = async () => {
  await cp.admin.executions.startExecution({
    organizationId,
    workflow: trivialWorkflowName,
    params: {},
    waitForResult: true,
    waitTimeoutSeconds: 60,
  });
};
await timedPool(100, 32, start);
const n = Number(process.env.N ?? 400);
const profile = process.env.PROF === "1";
const session = new Session();
if (profile) {
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
}
for (let r = 0; r < Number(process.env.ROUNDS ?? 1); r++) {
  const st0 = cp.statements();
  const cpu = await cpuSnapshot();
  const byP = await processCpuSnapshot();
  const load = await timedPool(n, 32, start);
  const used = await cpuSince(cpu, n);
  const usedP = await processCpuSince(byP, n);
  console.log(
    `stmts/exec ${((cp.statements() - st0) / n).toFixed(2)} ${load.opsPerSecond.toFixed(1)}/s ${formatCpu(used)} | ${formatProcessCpu(usedP)}`,
  );
}
if (profile) {
  const { profile: p } = await session.post("Profiler.stop");
  writeFileSync("/tmp/m/load.cpuprofile", JSON.stringify(p));
}
await runner.stop();
await cp.close();
process.exit(0);
