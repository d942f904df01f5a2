import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createExecutorDeps } from "@bifrost/runner/execute";
import {
  connectControlPlane,
  createJobHandler,
  type Heartbeat,
  startHeartbeat,
  startJobConsumer,
} from "@bifrost/runner/jobs";
import type { RunnerMetrics } from "@bifrost/runner/metrics";
import { connect } from "@nats-io/transport-node";
import { inject } from "vitest";
import type { ApiClients } from "./grpc-clients.js";
import type { TestControlPlane } from "./harness.js";
import { createRunnerKey } from "./runner-identity.js";

/** A runner in the test's own process (the real job loop, handler and sandbox). */
export interface InProcessRunner {
  /** The runner identity's API key. */
  key: string;
  stop(): Promise<void>;
}

/**
 * Creates a runner identity (as `root`, a platform admin) and runs the runner's job loop
 * against the test control plane's stream, as runner/src/main.ts wires it, with a work dir
 * of its own. With `heartbeat`, it also announces itself (once a minute); with `metrics`, the
 * handler counts into them.
 */
export async function startInProcessRunner(
  cp: TestControlPlane,
  root: ApiClients,
  options: { name: string; capacity?: number; heartbeat?: boolean; metrics?: RunnerMetrics },
): Promise<InProcessRunner> {
  const capacity = options.capacity ?? 2;
  const secret = await createRunnerKey(root, options.name);
  const workDir = await mkdtemp(join(tmpdir(), `bifrost-${options.name}-`));
  const client = connectControlPlane(cp.address, secret);
  const nats = await connect({ servers: inject("natsUrl") });
  const executor = await createExecutorDeps({
    workDir,
    fetchContent: async () => "",
    logger: { warn: () => {} },
  });
  const consumer = await startJobConsumer({
    nc: nats,
    names: cp.dispatch,
    capacity,
    progressEveryMs: 5_000,
    handle: createJobHandler({
      client,
      executor,
      runnerName: options.name,
      log: { info: () => {}, error: () => {} },
      ...(options.metrics && { metrics: options.metrics }),
    }),
  });
  const heartbeat: Heartbeat | undefined = options.heartbeat
    ? startHeartbeat({
        client,
        runnerName: options.name,
        capacity,
        inFlight: () => consumer.inFlight(),
        everyMs: 60_000,
      })
    : undefined;
  return {
    key: secret,
    async stop() {
      heartbeat?.stop();
      await consumer.stop();
      client.close();
      await nats.close();
      await executor.host.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
