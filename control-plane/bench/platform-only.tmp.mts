import { startBenchControlPlane } from "./bench-control-plane.js";
import { measurePlatform } from "./measure-platform.js";

const cp = await startBenchControlPlane({
  postgresUrl: "postgres://postgres@127.0.0.1:5432/postgres",
  redisUrl: "redis://127.0.0.1:6379",
  natsUrl: "nats://127.0.0.1:4222",
});
try {
  await measurePlatform(cp, {
    natsUrl: "nats://127.0.0.1:4222",
    warmup: 5,
    sequentialRuns: 20,
    loadExecutions: 400,
    loadInFlight: 32,
    capacity: 2,
  });
} finally {
  await cp.close();
}
process.exit(0);
