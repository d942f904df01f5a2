import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutionStatus } from "@bifrost/proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createResilienceWorld, type ResilienceWorld } from "../testing/resilience-fixture.js";
import { type RunnerProcess, startRunnerProcess } from "../testing/runner-process.js";

// A 2 s ack wait: a runner that stopped signalling progress would lose its jobs quickly, so
// a test passing with attempt 1 everywhere shows the runners kept their jobs through the outage.
let cp: TestControlPlane;
let fixture: ResilienceWorld;
let workDir: string;
const runners: RunnerProcess[] = [];

beforeAll(async () => {
  cp = await startTestControlPlane({ jobMaxDeliver: 3, jobAckWaitMs: 2_000 });
  fixture = await createResilienceWorld(cp);
  workDir = await mkdtemp(join(tmpdir(), "bifrost-cp-restart-test-"));
  await chmod(workDir, 0o711);
});

afterAll(async () => {
  for (const runner of runners) await runner.stop("SIGKILL");
  await cp?.start();
  await cp?.close();
  await rm(workDir, { recursive: true, force: true });
});

test("executions of two organizations running while the control plane restarts all finish, each once, on their first attempt", async () => {
  for (const name of ["runner-1", "runner-2"]) {
    const started = await startRunnerProcess({
      name,
      controlPlane: cp.address,
      runnerKey: fixture.runnerKey,
      natsUrl: cp.natsUrl,
      natsPrefix: cp.natsPrefix,
      workDir: join(workDir, name),
      capacity: 4,
    });
    runners.push(started);
  }
  // Ten executions on eight slots: some run through the outage, two wait in the queue.
  const started: Array<{ id: string; org: "A" | "B"; n: number }> = [];
  for (let n = 1; n <= 10; n++) {
    const org = n % 2 === 0 ? "B" : "A";
    started.push({ id: await fixture.startNap(org, n, 1_500), org, n });
  }
  const api = fixture.world.as(fixture.world.keys.platformAdmin);
  for (let i = 0; i < 400; i++) {
    let napping = 0;
    for (const { id } of started) {
      const { execution } = await api.executions.getExecution({ id });
      if (execution?.logs.some((log) => log.message === "napping")) napping++;
    }
    if (napping >= 4) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }

  // Down for longer than the naps: workflows finish and call config.get, runners report
  // events and completions, and queued jobs get pulled while nobody answers.
  await cp.stop();
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  await cp.start();

  for (const { id, org, n } of started) {
    const ended = await fixture.waitForEnd(id, 25_000);
    expect(ended.status, JSON.stringify(ended.error)).toBe(
      ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
    );
    expect(ended.result).toEqual(fixture.expected(org, n));
    expect(ended.organizationId).toBe(org === "A" ? fixture.world.orgA.id : fixture.world.orgB.id);
    // What the runners said about it, should it have run more than once (rare, unexplained).
    const story = () =>
      runners
        .map((runner) => runner.output())
        .join("")
        .split("\n")
        .filter((line) => line.includes(id))
        .join("\n");
    expect(ended.attempt, story()).toBe(1);
    expect(
      ended.logs.filter((log) => log.message === "napping"),
      story(),
    ).toHaveLength(1);
  }
  // Each execution ran to its end exactly once across both runners. (A completion whose
  // answer the restart lost is retried and refused, the execution having ended: the runner
  // still logs the run as finished, with recorded false.)
  const output = runners.map((runner) => runner.output()).join("");
  for (const { id } of started) {
    const lines = output.split("\n").filter((line) => line.includes(id));
    const finished = lines.filter((line) => line.includes('"msg":"execution finished"'));
    expect(finished, `execution ${id}; its runner said:\n${lines.join("\n")}`).toHaveLength(1);
  }
});

test("executions a control plane recorded but stopped before publishing are published when it is back", async () => {
  // As if the process died between StartExecution's insert and its publish: the rows exist,
  // no job does.
  await cp.stop();
  const actor = { userId: fixture.world.users.adminA, apiKeyId: null };
  const a = await cp.stores.executions.start(actor, fixture.world.orgA.id, "nap", { n: 11 });
  const b = await cp.stores.executions.start(actor, fixture.world.orgB.id, "nap", { n: 12 });
  await cp.start();
  for (const [id, org, n] of [
    [a.id, "A", 11],
    [b.id, "B", 12],
  ] as const) {
    const ended = await fixture.waitForEnd(id);
    expect(ended.status, JSON.stringify(ended.error)).toBe(
      ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
    );
    expect(ended.result).toEqual(fixture.expected(org, n));
    expect(ended.attempt).toBe(1);
  }
});
