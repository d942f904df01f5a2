import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutionStatus } from "@bifrost/proto";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { type OwnNatsServer, ownNatsServer } from "../testing/nats-server.js";
import { createResilienceWorld, type ResilienceWorld } from "../testing/resilience-fixture.js";
import { type RunnerProcess, startRunnerProcess } from "../testing/runner-process.js";

// This file's own nats-server (the shared one on 4222 serves other files meanwhile), stopped
// and started again on the same port and store directory.
let nats: OwnNatsServer;
let cp: TestControlPlane;
let fixture: ResilienceWorld;
let workDir: string;
let runner: RunnerProcess;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "bifrost-nats-restart-test-"));
  await chmod(workDir, 0o711);
  nats = await ownNatsServer({ storeDir: join(workDir, "jetstream") });
  await nats.start();
  cp = await startTestControlPlane({ natsUrl: nats.url, jobMaxDeliver: 3, jobAckWaitMs: 2_000 });
  fixture = await createResilienceWorld(cp);
  runner = await startRunnerProcess({
    name: "runner-1",
    controlPlane: cp.address,
    runnerKey: fixture.runnerKey,
    natsUrl: nats.url,
    natsPrefix: cp.natsPrefix,
    workDir: join(workDir, "runner-1"),
    capacity: 4,
  });
});

afterAll(async () => {
  await runner?.stop("SIGKILL");
  await nats?.start();
  await cp?.close();
  await nats?.stop();
  await rm(workDir, { recursive: true, force: true });
});

const outage = async (ms: number) => {
  await nats.stop();
  await new Promise((resolve) => setTimeout(resolve, ms));
  await nats.start();
};

test("the job stream keeps its jobs on disk, so a NATS restart cannot drop them", async () => {
  const nc = await connect({ servers: nats.url });
  const info = await (await jetstreamManager(nc)).streams.info(cp.dispatch.stream);
  await nc.close();
  expect(info.config.storage).toBe(StorageType.File);
});

test("executions of two organizations running and queued while NATS restarts all finish", async () => {
  // Six executions on four slots: four nap through the outage, two wait in the stream.
  const started: Array<{ id: string; org: "A" | "B"; n: number }> = [];
  for (let n = 1; n <= 6; n++) {
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
  await outage(1_000);

  for (const { id, org, n } of started) {
    const ended = await fixture.waitForEnd(id, 25_000);
    expect(ended.status, JSON.stringify(ended.error)).toBe(
      ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
    );
    expect(ended.result).toEqual(fixture.expected(org, n));
    expect(ended.attempt).toBeGreaterThanOrEqual(1);
  }
});

test("executions started while NATS is down stay queued and run once it is back", async () => {
  await nats.stop();
  // Each start waits out its publish timeout, then answers: recorded, queued.
  const [a, b] = await Promise.all([fixture.startNap("A", 7, 0), fixture.startNap("B", 8, 0)]);
  const api = fixture.world.as(fixture.world.keys.platformAdmin);
  for (const id of [a, b]) {
    const { execution } = await api.executions.getExecution({ id });
    expect(execution?.status).toBe(ExecutionStatus.EXECUTION_STATUS_QUEUED);
  }
  await nats.start();
  for (const [id, org, n] of [
    [a, "A", 7],
    [b, "B", 8],
  ] as const) {
    const ended = await fixture.waitForEnd(id, 25_000);
    expect(ended.status, JSON.stringify(ended.error)).toBe(
      ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
    );
    expect(ended.result).toEqual(fixture.expected(org, n));
    expect(ended.attempt).toBe(1);
  }
  const ids = [fixture.world.orgA.id, fixture.world.orgB.id];
  const active = await cp.sql`
    select id from executions where status in ('queued', 'running') and organization_id in ${cp.sql(ids)}`;
  expect(active).toEqual([]);
});
