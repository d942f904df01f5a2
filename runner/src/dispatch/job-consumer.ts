import { ExecutionJob, type JobDispatchNames } from "@bifrost/proto";
import { type JsMsg, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/** One delivery of a job, as the runner's handler sees it. */
export interface JobDelivery {
  job: ExecutionJob;
  /** 1 for the first delivery, 2 for the first redelivery, … */
  attempt: number;
}

/** What the handler decides about a delivery. */
export type JobDisposition =
  /** Done (the execution reached a terminal state): remove the job. */
  | { kind: "ack" }
  /** Could not run it now (e.g. shutting down): deliver it again after a delay. */
  | { kind: "retry"; delayMs: number }
  /** Never deliver it again (e.g. malformed). */
  | { kind: "drop"; reason: string };

/** A running consumer; stop() stops pulling and waits for the jobs in hand to finish. */
export interface JobConsumer {
  /** Jobs being handled right now. */
  inFlight(): number;
  stop(): Promise<void>;
}

/**
 * Pulls jobs from the durable consumer, never holding more than `capacity` at once: a job is
 * only requested when a slot is free, so other runners get the rest. While a handler runs,
 * the message is kept alive with in-progress acks every `progressEveryMs` (set it well below
 * the consumer's ack_wait); if this process dies, the acks stop and JetStream redelivers the
 * job to another runner after ack_wait.
 */
export async function startJobConsumer(options: {
  nc: NatsConnection;
  names: JobDispatchNames;
  capacity: number;
  progressEveryMs: number;
  handle: (delivery: JobDelivery) => Promise<JobDisposition>;
  onError?: (error: unknown) => void;
}): Promise<JobConsumer> {
  const { capacity, progressEveryMs, handle } = options;
  const consumer = await jetstream(options.nc).consumers.get(
    options.names.stream,
    options.names.consumer,
  );
  const running = new Set<Promise<void>>();
  let stopping = false;
  let wake: (() => void) | undefined;

  const process = async (msg: JsMsg) => {
    const keepAlive = setInterval(() => msg.working(), progressEveryMs);
    try {
      let job: ExecutionJob;
      try {
        job = ExecutionJob.decode(msg.data);
      } catch (error) {
        options.onError?.(new Error(`undecodable job dropped: ${(error as Error).message}`));
        msg.term();
        return;
      }
      const disposition = await handle({ job, attempt: msg.info.deliveryCount });
      // A plain ack, not one the server confirms: the execution's state is in PostgreSQL, and
      // should an ack be lost, the redelivery it allows is refused at the claim (the execution
      // has ended) and acked then. Waiting for the confirmation held the slot a round trip.
      if (disposition.kind === "ack") msg.ack();
      else if (disposition.kind === "retry") msg.nak(disposition.delayMs);
      // No reason suffix: nats-server before 2.10 does not understand "+TERM <reason>" and
      // would redeliver. The handler logs why it dropped the job.
      else msg.term();
    } catch (error) {
      // The handler itself failed: let JetStream redeliver after a pause.
      options.onError?.(error);
      msg.nak(1000);
    } finally {
      clearInterval(keepAlive);
    }
  };

  const loop = (async () => {
    while (!stopping) {
      if (running.size >= capacity) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      let msg: JsMsg | null = null;
      try {
        msg = await consumer.next({ expires: 1000 });
      } catch (error) {
        if (stopping) break;
        options.onError?.(error);
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      if (!msg) continue;
      if (stopping) {
        msg.nak(0);
        break;
      }
      const task = process(msg).finally(() => {
        running.delete(task);
        wake?.();
      });
      running.add(task);
    }
  })();

  return {
    inFlight: () => running.size,
    async stop() {
      stopping = true;
      wake?.();
      await loop;
      await Promise.all(running);
    },
  };
}
