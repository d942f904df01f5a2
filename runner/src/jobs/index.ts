/** The runner's job loop, as a library: consumer, handler, control-plane client, metrics. */
export { type ControlPlaneClient, connectControlPlane } from "../control-plane-client.js";
export { type JobConsumer, startJobConsumer } from "../dispatch/job-consumer.js";
export { type MetricsServer, startMetricsServer } from "../metrics/metrics-server.js";
export { createRunnerMetrics, type RunnerMetrics } from "../metrics/runner-metrics.js";
export { type Heartbeat, startHeartbeat } from "./heartbeat.js";
export { createJobHandler, type RunnerLog } from "./job-handler.js";
