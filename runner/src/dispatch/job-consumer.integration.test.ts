import { randomUUID } from "node:crypto";
import { ExecutionJob, jobDispatchNames } from "@bifrost/proto";
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, expect, inject, test } from "vitest";
import { type JobDelivery, startJobConsumer } from "./job-consumer.js";

// The control plane owns the stream and consumer (control-plane/src/executions/job-queue.ts);
// these tests build the same shape with short timings on a private prefix.
const ackWaitMs = 1_000;
let names: ReturnType<typeof jobDispatchNames>;
let connections: NatsConnection[] = [];

const open = async () => {
  const nc = await connect({ servers: inject("natsUrl") });
  connections.push(nc);
  return nc;
};

beforeEach(async () => {
  names = jobDispatchNames(`test_${randomUUID().slice(0, 8)}`);
  const jsm = await jetstreamManager(await open());
  await jsm.streams.add({
    name: names.stream,
    subjects: [names.subject],
    retention: RetentionPolicy.Workqueue,
  });
  await jsm.consumers.add(names.stream, {
    durable_name: names.consumer,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ackWaitMs * 1_000_000,
    max_deliver: 2,
  });
});

afterEach(async () => {
  const jsm = await jetstreamManager(connections[0] as NatsConnection);
  await jsm.streams.delete(names.stream).catch(() => {});
  for (const nc of connections) await nc.close().catch(() => {});
  connections = [];
});

async function publish(count: number): Promise<string[]> {
  const js = jetstream(connections[0] as NatsConnection);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const executionId = randomUUID();
    ids.push(executionId);
    const data = ExecutionJob.encode({
      executionId,
      organizationId: randomUUID(),
      enqueuedAt: new Date(),
    }).finish();
    await js.publish(names.subject, data, { msgID: executionId });
  }
  return ids;
}

const until = async (condition: () => boolean, what: string, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

test("a runner holds at most its capacity; another runner takes the rest", async () => {
  await publish(5);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const seenBy = { a: [] as string[], b: [] as string[] };
  let peakA = 0;
  const a = await startJobConsumer({
    nc: await open(),
    names,
    capacity: 2,
    progressEveryMs: 300,
    handle: async ({ job }) => {
      seenBy.a.push(job.executionId);
      peakA = Math.max(peakA, a.inFlight());
      await gate;
      return { kind: "ack" };
    },
  });
  await until(() => seenBy.a.length === 2, "runner A to take two jobs");
  const b = await startJobConsumer({
    nc: await open(),
    names,
    capacity: 5,
    progressEveryMs: 300,
    handle: async ({ job }) => {
      seenBy.b.push(job.executionId);
      return { kind: "ack" };
    },
  });
  await until(() => seenBy.b.length === 3, "runner B to take the other three");
  expect(seenBy.a.length).toBe(2);
  release();
  await Promise.all([a.stop(), b.stop()]);
  expect(peakA).toBeLessThanOrEqual(2);
  expect(new Set([...seenBy.a, ...seenBy.b]).size).toBe(5);
});

test("a job that outlives ack_wait is kept alive by progress acks and delivered once", async () => {
  await publish(1);
  const deliveries: JobDelivery[] = [];
  const consumer = await startJobConsumer({
    nc: await open(),
    names,
    capacity: 2,
    progressEveryMs: 250,
    handle: async (delivery) => {
      deliveries.push(delivery);
      await new Promise((resolve) => setTimeout(resolve, ackWaitMs * 2.5));
      return { kind: "ack" };
    },
  });
  await until(() => deliveries.length === 1, "the delivery");
  await new Promise((resolve) => setTimeout(resolve, ackWaitMs * 3));
  await consumer.stop();
  expect(deliveries.map((d) => d.attempt)).toEqual([1]);
});

test("when a runner dies mid-job, the job is redelivered to another runner as attempt 2", async () => {
  const [id] = await publish(1);
  const doomed = await open();
  let taken = false;
  await startJobConsumer({
    nc: doomed,
    names,
    capacity: 1,
    progressEveryMs: 250,
    handle: () => {
      taken = true;
      return new Promise(() => {}); // never finishes: the process "dies" below
    },
  });
  await until(() => taken, "the first runner to take the job");
  await doomed.close(); // like SIGKILL: no ack, no more progress acks
  const survivor: JobDelivery[] = [];
  const b = await startJobConsumer({
    nc: await open(),
    names,
    capacity: 1,
    progressEveryMs: 250,
    handle: async (delivery) => {
      survivor.push(delivery);
      return { kind: "ack" };
    },
  });
  await until(() => survivor.length === 1, "the redelivery", ackWaitMs * 5);
  await b.stop();
  expect(survivor[0]?.job.executionId).toBe(id);
  expect(survivor[0]?.attempt).toBe(2);
});

test("after the last allowed delivery JetStream gives up and announces it", async () => {
  const [id] = await publish(1);
  const watcher = await open();
  const advisories: string[] = [];
  const sub = watcher.subscribe(
    `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${names.stream}.${names.consumer}`,
  );
  void (async () => {
    for await (const m of sub) advisories.push(m.string());
  })();
  const attempts: number[] = [];
  const consumer = await startJobConsumer({
    nc: await open(),
    names,
    capacity: 1,
    progressEveryMs: 250,
    handle: async ({ attempt }) => {
      attempts.push(attempt);
      throw new Error("handler crashed"); // nak: redeliver
    },
  });
  await until(() => advisories.length === 1, "the max-deliveries advisory", ackWaitMs * 10);
  const deliveredBeforeAdvisory = attempts.length;
  await new Promise((resolve) => setTimeout(resolve, ackWaitMs * 2));
  await consumer.stop();
  // Delivered again after the first nak, and never after the advisory. The counts themselves
  // are the server's: nats-server before 2.10.14 can report a redelivery as delivery 1 when a
  // delivery to an expired pull failed (nats-server#5305), so only the first is certain. The
  // control plane numbers attempts by claims for that reason (execution-store.ts).
  expect(attempts[0]).toBe(1);
  expect(attempts.length).toBeGreaterThanOrEqual(2);
  expect(attempts.length).toBe(deliveredBeforeAdvisory);
  const advisory = JSON.parse(advisories[0] as string) as {
    stream_seq: number;
    deliveries: number;
  };
  expect(advisory.deliveries).toBeGreaterThanOrEqual(2);
  const message = await (await jetstreamManager(watcher)).streams.getMessage(names.stream, {
    seq: advisory.stream_seq,
  });
  expect(ExecutionJob.decode(message?.data as Uint8Array).executionId).toBe(id);
});

test("a dropped job is never delivered again", async () => {
  await publish(1);
  const attempts: number[] = [];
  const consumer = await startJobConsumer({
    nc: await open(),
    names,
    capacity: 1,
    progressEveryMs: 250,
    handle: async ({ attempt }) => {
      attempts.push(attempt);
      return { kind: "drop", reason: "malformed" };
    },
  });
  await until(() => attempts.length === 1, "the delivery");
  await new Promise((resolve) => setTimeout(resolve, ackWaitMs * 2));
  await consumer.stop();
  expect(attempts).toEqual([1]);
});
