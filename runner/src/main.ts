// The runner's composition root: the only module with side effects at import time.
import { jobDispatchNames } from "@bifrost/proto";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { loadRunnerConfig } from "./config.js";
import { connectControlPlane } from "./control-plane-client.js";
import { startJobConsumer } from "./dispatch/job-consumer.js";
import { createExecutorDeps } from "./execute/index.js";
import { startHeartbeat } from "./jobs/heartbeat.js";
import { createJobHandler } from "./jobs/job-handler.js";
import { type MetricsServer, startMetricsServer } from "./metrics/metrics-server.js";
import { createRunnerMetrics } from "./metrics/runner-metrics.js";

let config: ReturnType<typeof loadRunnerConfig>;
try {
  config = loadRunnerConfig();
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(2);
}
const log = pino({ name: "bifrost-runner", level: config.logLevel });

try {
  const executor = await createExecutorDeps({
    workDir: config.workDir,
    fetchContent: async () => {
      throw new Error("content is fetched per execution");
    },
    logger: { warn: (fields, message) => log.warn(fields, message) },
    heapLimitMb: config.heapLimitMb,
    sandboxSpares: config.capacity,
    preparedSandboxes: config.preparedSandboxes,
    ...(config.sandboxUid !== undefined && { sandboxUid: config.sandboxUid }),
  });
  const client = connectControlPlane(config.controlPlane, config.runnerKey);
  let nats: Awaited<ReturnType<typeof connect>>;
  try {
    nats = await connect({
      servers: config.natsUrl,
      timeout: 5000,
      maxReconnectAttempts: -1,
      name: config.name,
    });
  } catch (error) {
    throw new Error(`cannot reach NATS at ${config.natsUrl}: ${(error as Error).message}`);
  }
  // Slots in use are read from the consumer once it exists; until then none are.
  let inFlight = () => 0;
  const metrics = createRunnerMetrics({
    capacity: config.capacity,
    busy: () => inFlight(),
    ...(executor.prepared && { prepared: executor.prepared }),
  });
  // Before any job is taken: a runner that cannot serve its metrics fails to start, naming why.
  let metricsServer: MetricsServer | undefined;
  if (config.metricsListen) {
    metricsServer = await startMetricsServer(metrics.registry, config.metricsListen);
  }
  const consumer = await startJobConsumer({
    nc: nats,
    names: jobDispatchNames(config.natsPrefix),
    capacity: config.capacity,
    progressEveryMs: config.progressEveryMs,
    handle: createJobHandler({ client, executor, runnerName: config.name, log, metrics }),
    onError: (error) => log.error({ err: error }, "job consumer error"),
  });
  inFlight = () => consumer.inFlight();
  const heartbeat = startHeartbeat({
    client,
    runnerName: config.name,
    capacity: config.capacity,
    inFlight: () => consumer.inFlight(),
    everyMs: 10_000,
    onError: (error) => log.warn({ err: error }, "heartbeat failed"),
  });
  log.info(
    {
      name: config.name,
      capacity: config.capacity,
      controlPlane: config.controlPlane,
      metrics: metricsServer ? `http://${metricsServer.address}/metrics` : "off",
    },
    "runner started",
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, inFlight: consumer.inFlight() }, "draining: finishing executions in hand");
    await consumer.stop();
    heartbeat.stop();
    await metricsServer?.close();
    client.close();
    await nats.drain();
    await executor.prepared?.close();
    await executor.host.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
} catch (error) {
  log.fatal({ err: error }, "runner failed to start");
  process.exit(1);
}
