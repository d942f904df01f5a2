import { ExecutionJob, type JobDispatchNames, type SandboxBootHint } from "@bifrost/proto";
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/** How jobs are delivered: the redelivery policy the durable consumer enforces. */
export interface JobQueuePolicy {
  /** Deliveries of one job before JetStream gives up (the runner then marks it failed). */
  maxDeliver: number;
  /** How long a runner may hold a job without acking or signalling progress. */
  ackWaitMs: number;
  /** Window in which a republished execution id is recognised as a duplicate. */
  duplicateWindowMs: number;
}

/** Publishes execution jobs; the stream and consumer are created (or updated) on open. */
export interface JobQueue {
  /** Queues an execution. `duplicate` is true when this execution id was already queued. */
  publish(job: {
    executionId: string;
    organizationId: string;
    bootHint?: SandboxBootHint;
  }): Promise<{ duplicate: boolean }>;
}

/**
 * Ensures the work-queue stream and the runners' durable pull consumer exist with this
 * policy, and returns a publisher. The control plane owns both, so delivery policy lives in
 * one place; runners only bind to the consumer.
 */
export async function openJobQueue(
  nc: NatsConnection,
  names: JobDispatchNames,
  policy: JobQueuePolicy,
): Promise<JobQueue> {
  const jsm: JetStreamManager = await jetstreamManager(nc);
  const streamConfig = {
    name: names.stream,
    subjects: [names.subject],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: policy.duplicateWindowMs * 1_000_000,
  };
  try {
    await jsm.streams.info(names.stream);
    await jsm.streams.update(names.stream, streamConfig);
  } catch {
    await jsm.streams.add(streamConfig);
  }
  const consumerConfig = {
    durable_name: names.consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: policy.ackWaitMs * 1_000_000,
    max_deliver: policy.maxDeliver,
    filter_subject: names.subject,
  };
  try {
    await jsm.consumers.info(names.stream, names.consumer);
    await jsm.consumers.update(names.stream, names.consumer, consumerConfig);
  } catch {
    await jsm.consumers.add(names.stream, consumerConfig);
  }
  const js: JetStreamClient = jetstream(nc);
  return {
    async publish(job) {
      const payload = ExecutionJob.encode({ ...job, enqueuedAt: new Date() }).finish();
      const ack = await js.publish(names.subject, payload, { msgID: job.executionId });
      return { duplicate: ack.duplicate };
    },
  };
}

/** Stops watching for abandoned jobs. */
export interface AbandonedJobWatch {
  stop(): Promise<void>;
}

/**
 * Calls `onAbandoned` for every job JetStream gave up on after its last allowed delivery
 * (the consumer's max-deliveries advisory): each runner that took it died or failed to finish
 * it. The job is removed from the stream once reported, so it is reported once.
 */
export async function watchAbandonedJobs(
  nc: NatsConnection,
  names: JobDispatchNames,
  onAbandoned: (job: ExecutionJob, deliveries: number) => Promise<void>,
  onError: (error: unknown) => void,
): Promise<AbandonedJobWatch> {
  const jsm = await jetstreamManager(nc);
  const subscription = nc.subscribe(
    `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${names.stream}.${names.consumer}`,
  );
  const loop = (async () => {
    for await (const message of subscription) {
      try {
        const advisory = message.json<{ stream_seq: number; deliveries: number }>();
        const stored = await jsm.streams.getMessage(names.stream, { seq: advisory.stream_seq });
        if (!stored) continue;
        await onAbandoned(ExecutionJob.decode(stored.data), advisory.deliveries);
        await jsm.streams.deleteMessage(names.stream, advisory.stream_seq);
      } catch (error) {
        onError(error);
      }
    }
  })();
  return {
    async stop() {
      subscription.unsubscribe();
      await loop;
    },
  };
}
