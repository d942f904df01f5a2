/**
 * Prometheus metrics, as a library: the runner's own, and the endpoint that serves a registry
 * (the control plane serves its registry with it too).
 */
export { type MetricsServer, startMetricsServer } from "./metrics-server.js";
export { seriesValue } from "./prometheus-text.js";
export { createRunnerMetrics, type RunnerMetrics } from "./runner-metrics.js";
