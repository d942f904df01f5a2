import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutionStatus } from "@bifrost/proto";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createResilienceWorld, type ResilienceWorld } from "../testing/resilience-fixture.js";
import { isAlive, type RunnerProcess, startRunnerProcess } from "../testing/runner-process.js";

// Real runner processes killed with SIGKILL: no drain, no ack, no goodbye. A short ack wait
// brings the job back within a second; two deliveries are allowed.
let cp: TestControlPlane;
let fixture: ResilienceWorld;
let workDir: string;
const runners: RunnerProcess[] = [];

beforeAll(async () => {
  cp = await startTestControlPlane({ jobMaxDeliver: 2, jobAckWaitMs: 1_000 });
  fixture = await createResilienceWorld(cp);
  workDir = await mkdtemp(join(tmpdir(), "bifrost-runner-kill-test-"));
  await chmod(workDir, 0o711);
});

afterEach(async () => {
  for (const runner of runners.splice(0)) await runner.stop("SIGKILL");
});

afterAll(async () => {
  await cp?.close();
  await rm(workDir, { recursive: true, force: true });
});

const runner = async (name: string) => {
  const started = await startRunnerProcess({
    name,
    controlPlane: cp.address,
    runnerKey: fixture.runnerKey,
    natsUrl: cp.natsUrl,
    natsPrefix: cp.natsPrefix,
    workDir: join(workDir, name),
  });
  runners.push(started);
  return started;
};

/** Waits until the execution runs on `runnerName` and this attempt's workflow has logged (Deno is up). */
const runningOn = (id: string, runnerName: string, attempt: number) =>
  fixture.waitFor(
    id,
    (e) =>
      e.status === ExecutionStatus.EXECUTION_STATUS_RUNNING &&
      e.runnerId === runnerName &&
      e.attempt === attempt &&
      e.logs.filter((log) => log.message === "napping").length === attempt,
  );

/** SIGKILLs the runner and waits until every process it had started (its sandboxes) is gone. */
async function killRunner(runner: RunnerProcess): Promise<void> {
  const sandboxes = await runner.descendants();
  expect(sandboxes.length, runner.output()).toBeGreaterThan(0);
  await runner.stop("SIGKILL");
  for (let i = 0; i < 100; i++) {
    const alive = [];
    for (const pid of sandboxes) if (await isAlive(pid)) alive.push(pid);
    if (alive.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const left = [];
  for (const pid of sandboxes) if (await isAlive(pid)) left.push(pid);
  expect(left, "sandbox processes outlived their SIGKILLed runner").toEqual([]);
}

test("a runner process SIGKILLed mid-execution takes its sandboxes with it, and another runner finishes each execution as attempt 2", async () => {
  const first = await runner("runner-1");
  const a = await fixture.startNap("A", 1, 3_000);
  const b = await fixture.startNap("B", 2, 3_000);
  await runningOn(a, "runner-1", 1);
  await runningOn(b, "runner-1", 1);
  await killRunner(first);
  expect(await first.exited).toBeNull();

  const second = await runner("runner-2");
  const endedA = await fixture.waitForEnd(a);
  const endedB = await fixture.waitForEnd(b);
  for (const [ended, org, n] of [
    [endedA, "A", 1],
    [endedB, "B", 2],
  ] as const) {
    expect(ended.status).toBe(ExecutionStatus.EXECUTION_STATUS_SUCCEEDED);
    expect(ended.result).toEqual(fixture.expected(org, n));
    expect(ended.attempt).toBe(2);
    expect(ended.runnerId).toBe("runner-2");
    // Each attempt's workflow logged once: the killed one and the one that finished.
    expect(ended.logs.filter((log) => log.message === "napping")).toHaveLength(2);
  }
  // The runner that finished them counts both on its metrics endpoint.
  const metrics = await (await fetch(second.metricsUrl as string)).text();
  expect(metrics).toContain('bifrost_runner_executions_total{status="succeeded",reason="none"} 2');
});

test("executions whose runner processes are SIGKILLed on every allowed delivery end failed as lost, saying why", async () => {
  const a = await fixture.startNap("A", 3, 30_000);
  const b = await fixture.startNap("B", 4, 30_000);
  for (const [name, attempt] of [
    ["runner-3", 1],
    ["runner-4", 2],
  ] as const) {
    const doomed = await runner(name);
    await runningOn(a, name, attempt);
    await runningOn(b, name, attempt);
    await killRunner(doomed);
  }
  // JetStream gives up on a job (the max-deliveries advisory) when a consumer next pulls:
  // with every runner dead nothing pulls, so one more runner comes up. It must not run them.
  const bystander = await runner("runner-5");
  for (const id of [a, b]) {
    const ended = await fixture.waitForEnd(id);
    expect(ended.status).toBe(ExecutionStatus.EXECUTION_STATUS_FAILED);
    expect(ended.error).toMatchObject({ kind: "lost", name: "ExecutionLost" });
    expect(ended.error?.message).toBe(
      "no runner finished the execution after 2 attempts (each runner stopped or died mid-run)",
    );
    expect(ended.attempt).toBe(2);
    expect(ended.runnerId).toBe("runner-4");
    expect(ended.result).toBeUndefined();
  }
  expect(bystander.output()).not.toContain("execution claimed");
  const ids = [fixture.world.orgA.id, fixture.world.orgB.id];
  const active = await cp.sql`
    select id from executions where status in ('queued', 'running') and organization_id in ${cp.sql(ids)}`;
  expect(active).toEqual([]);
});
