import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutionStatus } from "@bifrost/proto";
import { createExecutorDeps } from "@bifrost/runner/execute";
import { connectControlPlane, createJobHandler, startJobConsumer } from "@bifrost/runner/jobs";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { waitForEnd as waitForExecutionEnd } from "../testing/execution-waits.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createRunnerKey } from "../testing/runner-identity.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope } from "../testing/wire.js";

// Short delivery timings so a dead runner's job comes back within a second.
const ackWaitMs = 1_000;
let cp: TestControlPlane;
let world: TenancyWorld;
let runnerKey: string;
let workDir: string;
const connections: NatsConnection[] = [];

beforeAll(async () => {
  cp = await startTestControlPlane({ jobMaxDeliver: 2, jobAckWaitMs: ackWaitMs });
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/quick.ts",
    content: `import { workflow } from "bifrost";\nexport const quick = workflow({ name: "quick" }, (_p, ctx) => ({ org: ctx.organization.name }));`,
  });
  await cp.discovery.drain();
  runnerKey = await createRunnerKey(root, "recovery");
  workDir = await mkdtemp(join(tmpdir(), "bifrost-recovery-test-"));
});

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => {});
  await cp?.close();
  await rm(workDir, { recursive: true, force: true });
});

const nats = async () => {
  const nc = await connect({ servers: inject("natsUrl") });
  connections.push(nc);
  return nc;
};

const waitForEnd = (id: string) =>
  waitForExecutionEnd(world.as(world.keys.platformAdmin), id, 15_000);

/** Waits until no runner has a pull request waiting on the job consumer. */
async function noPendingPulls(): Promise<void> {
  const jsm = await jetstreamManager(await nats());
  for (let i = 0; i < 100; i++) {
    const info = await jsm.consumers.info(cp.dispatch.stream, cp.dispatch.consumer);
    if (info.num_waiting === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("a pull request stayed pending on the job consumer for 5 s");
}

async function startQuick(): Promise<string> {
  const api = world.as(world.keys.memberA);
  const request = {
    organizationId: world.orgA.id,
    workflow: "quick",
    params: {},
    waitForResult: false,
    waitTimeoutSeconds: 0,
  };
  const { execution } = await api.executions.startExecution(request);
  return execution?.id as string;
}

test("a runner killed mid-execution: the execution completes on another runner as attempt 2", async () => {
  const id = await startQuick();
  // The first runner claims the job and dies before finishing (its connection drops, no ack).
  const doomed = await nats();
  const doomedClient = connectControlPlane(cp.address, runnerKey);
  let claimed = false;
  await startJobConsumer({
    nc: doomed,
    names: cp.dispatch,
    capacity: 1,
    progressEveryMs: 200,
    handle: async ({ job, attempt }) => {
      await doomedClient.claimExecution({
        executionId: job.executionId,
        attempt,
        runnerName: "doomed",
      });
      claimed = true;
      return new Promise(() => {});
    },
  });
  for (let i = 0; i < 200 && !claimed; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  expect(claimed).toBe(true);
  await doomed.close();
  doomedClient.close();

  const client = connectControlPlane(cp.address, runnerKey);
  const survivorNc = await nats();
  const executor = await createExecutorDeps({
    workDir,
    fetchContent: async () => "",
    logger: { warn: () => {} },
  });
  const survivor = await startJobConsumer({
    nc: survivorNc,
    names: cp.dispatch,
    capacity: 1,
    progressEveryMs: 200,
    handle: createJobHandler({
      client,
      executor,
      runnerName: "survivor",
      log: { info: () => {}, error: () => {} },
    }),
  });
  const execution = await waitForEnd(id);
  await survivor.stop();
  await survivorNc.close();
  await executor.host.close();
  client.close();
  expect(execution.status).toBe(ExecutionStatus.EXECUTION_STATUS_SUCCEEDED);
  expect(execution.result).toEqual({ org: "Org A" });
  expect(execution.attempt).toBe(2);
  expect(execution.runnerId).toBe("survivor");
});

test("an execution no runner finishes within the allowed deliveries ends failed, saying why", async () => {
  // A pull the previous test's runner left on the server (it stopped while a pull was
  // pending) would take a delivery without claiming it; this test counts deliveries.
  await noPendingPulls();
  const id = await startQuick();
  const client = connectControlPlane(cp.address, runnerKey);
  // What each delivery saw, for the failure messages below.
  const deliveries: string[] = [];
  const failing = await startJobConsumer({
    nc: await nats(),
    names: cp.dispatch,
    capacity: 1,
    progressEveryMs: 200,
    handle: async ({ job, attempt }) => {
      const seen = `delivery ${attempt} of ${job.executionId === id ? "this job" : job.executionId}`;
      try {
        const { claimed } = await client.claimExecution({
          executionId: job.executionId,
          attempt,
          runnerName: "flaky",
        });
        deliveries.push(`${seen}: ${claimed ? "claimed" : "not claimed (already over)"}`);
      } catch (error) {
        deliveries.push(`${seen}: claim refused (${(error as Error).message})`);
      }
      throw new Error("runner crashed while preparing the sandbox");
    },
  });
  const execution = await waitForEnd(id);
  await failing.stop();
  client.close();
  expect(execution.status).toBe(ExecutionStatus.EXECUTION_STATUS_FAILED);
  // Two attempts with a correct server. nats-server before 2.10.14 also counts a delivery to
  // an expired pull that failed (nats-server#5305): then it gives up after one real attempt,
  // and the delivery it still makes is not claimed. Either way: failed, lost, saying why.
  expect(execution.attempt, deliveries.join("; ")).toBeGreaterThanOrEqual(1);
  expect(execution.attempt, deliveries.join("; ")).toBeLessThanOrEqual(2);
  expect(execution.error).toMatchObject({ kind: "lost", name: "ExecutionLost" });
  expect(execution.error?.message).toBe(
    "no runner finished the execution after 2 attempts (each runner stopped or died mid-run)",
  );
});

test("every claim is a new attempt, even when the server repeats a delivery count", async () => {
  const id = await startQuick();
  const attempts: number[] = [];
  // As nats-server before 2.10.14 can do: a redelivery reported as delivery 1 again.
  for (const deliveryCount of [1, 1, 5, 2]) {
    const claim = await cp.stores.executions.claim(id, deliveryCount, "counting");
    attempts.push(claim?.execution.attempt ?? -1);
  }
  expect(attempts).toEqual([1, 2, 5, 6]);
  await cp.sql`update executions set status = 'failed', finished_at = now() where id = ${id}`;
  expect(await cp.stores.executions.claim(id, 7, "late")).toBeUndefined();
});

test("the reconciler fails an execution still running long after its last possible attempt", async () => {
  const id = await startQuick();
  const fresh = await startQuick();
  // As if a runner claimed it long ago and every trace of the job was lost since.
  await cp.sql`update executions set status = 'running', attempt = 1, started_at = now() - interval '2 hours' where id = ${id}`;
  await cp.sql`update executions set status = 'running', attempt = 1, started_at = now() where id = ${fresh}`;
  const failed = await cp.stores.executions.reconcileStale({
    maxDeliver: 2,
    ackWaitMs: 1_000,
    slackSeconds: 60,
  });
  expect(failed).toEqual([id]);
  const execution = await cp.stores.executions.get(id);
  expect(execution.status).toBe("failed");
  expect(execution.error).toMatchObject({ kind: "lost" });
  expect((await cp.stores.executions.get(fresh)).status).toBe("running");
});
