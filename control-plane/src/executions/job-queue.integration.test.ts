import { randomUUID } from "node:crypto";
import { ExecutionJob, jobDispatchNames } from "@bifrost/proto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { openJobQueue } from "./job-queue.js";

// A per-file prefix: its own stream, subject and consumer on the shared NATS.
const names = jobDispatchNames(`test_${randomUUID().slice(0, 8)}`);
const policy = { maxDeliver: 3, ackWaitMs: 5_000, duplicateWindowMs: 60_000 };
let nc: NatsConnection;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
});

afterAll(async () => {
  await (await jetstreamManager(nc)).streams.delete(names.stream).catch(() => {});
  await nc.close();
});

test("opening the queue creates the work-queue stream and the runners' consumer with the policy", async () => {
  await openJobQueue(nc, names, policy);
  const jsm = await jetstreamManager(nc);
  const stream = await jsm.streams.info(names.stream);
  expect(stream.config.subjects).toEqual([names.subject]);
  expect(stream.config.retention).toBe("workqueue");
  const consumer = await jsm.consumers.info(names.stream, names.consumer);
  expect(consumer.config.max_deliver).toBe(3);
  expect(consumer.config.ack_wait).toBe(5_000 * 1_000_000);
  // Opening again (a second control plane, or a restart) keeps them and applies the policy.
  await openJobQueue(nc, names, { ...policy, maxDeliver: 4 });
  expect((await jsm.consumers.info(names.stream, names.consumer)).config.max_deliver).toBe(4);
});

test("publishing the same execution twice queues it once", async () => {
  const queue = await openJobQueue(nc, names, policy);
  const executionId = randomUUID();
  const organizationId = randomUUID();
  expect(await queue.publish({ executionId, organizationId })).toEqual({ duplicate: false });
  expect(await queue.publish({ executionId, organizationId })).toEqual({ duplicate: true });
  const consumer = await jetstream(nc).consumers.get(names.stream, names.consumer);
  const first = await consumer.next({ expires: 2000 });
  expect(first).not.toBeNull();
  const job = ExecutionJob.decode(first?.data as Uint8Array);
  expect(job.executionId).toBe(executionId);
  expect(job.organizationId).toBe(organizationId);
  expect(job.enqueuedAt).toBeInstanceOf(Date);
  await first?.ackAck();
  expect(await consumer.next({ expires: 1000 })).toBeNull();
});
