/** The runner's job loop, as a library: consumer, handler and control-plane client. */
export { type ControlPlaneClient, connectControlPlane } from "../control-plane-client.js";
export { type JobConsumer, startJobConsumer } from "../dispatch/job-consumer.js";
export { type Heartbeat, startHeartbeat } from "./heartbeat.js";
export { createJobHandler, type RunnerLog } from "./job-handler.js";
