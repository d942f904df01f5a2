/**
 * Names of the NATS JetStream objects that carry ExecutionJob messages from the control
 * plane to the runners. A prefix isolates deployments sharing one NATS (and tests).
 */
export interface JobDispatchNames {
  /** The stream holding queued jobs (work-queue retention). */
  stream: string;
  /** The subject jobs are published on. */
  subject: string;
  /** The durable pull consumer every runner pulls from. */
  consumer: string;
}

/** The dispatch names for a deployment prefix ("" for the default deployment). */
export function jobDispatchNames(prefix = ""): JobDispatchNames {
  const tag = prefix.replace(/[^A-Za-z0-9_-]/g, "_");
  return {
    stream: `${tag ? `${tag}_` : ""}BIFROST_JOBS`,
    subject: `${tag ? `${tag}.` : ""}bifrost.jobs.execute`,
    consumer: `${tag ? `${tag}_` : ""}bifrost-runners`,
  };
}
