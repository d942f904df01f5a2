import { availableParallelism, hostname, totalmem } from "node:os";
import { resolve } from "node:path";
import { z } from "zod";
import { defaultProcessLimits } from "./sandbox/resource-limits.js";

const listenPattern = /^([^\s:[\]]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;

const schema = z.object({
  // The control plane's gRPC address (host:port).
  BIFROST_CONTROL_PLANE: z
    .string()
    .regex(/^[^\s:]+:\d+$/)
    .default("127.0.0.1:50051"),
  // This runner's API key: a runner identity's key (CreateUser with runner = true).
  BIFROST_RUNNER_KEY: z
    .string({ error: "is required (the API key of a runner identity)" })
    .min(1, "is required (the API key of a runner identity)"),
  // NATS with JetStream, and the dispatch prefix the control plane uses.
  BIFROST_NATS_URL: z
    .string()
    .regex(/^nats:\/\/\S+$/)
    .default("nats://127.0.0.1:4222"),
  BIFROST_NATS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/)
    .default(""),
  // Executions run at once; the runner pulls a job only when a slot is free. Default: see
  // `defaultCapacity`.
  BIFROST_RUNNER_CAPACITY: z.coerce.number().int().min(1).max(256).optional(),
  // How often a running job's message is kept alive (well below the control plane's ack wait).
  BIFROST_RUNNER_PROGRESS_MS: z.coerce.number().int().min(100).default(5_000),
  // Name shown on executions and in logs.
  BIFROST_RUNNER_NAME: z.string().min(1).default(hostname()),
  // Trees, per-organization Deno caches and job files.
  BIFROST_RUNNER_WORK_DIR: z.string().min(1).default(".bifrost/runner"),
  // V8 heap limit of each execution, in MB.
  BIFROST_RUNNER_HEAP_MB: z.coerce.number().int().min(32).max(8192).default(256),
  // Host uid (and gid) starters and sandboxes run as when the runner is root. A uid no other
  // process of the host uses keeps every other process out of the sandboxes' files and /proc.
  BIFROST_RUNNER_SANDBOX_UID: z.coerce
    .number()
    .int()
    .min(1, "must not be 0 (root)")
    .max(2 ** 32 - 2)
    .optional(),
  // Sandboxes started ahead of repeating jobs (an idle Deno, ~30 MB, each); 0 turns it off.
  // Default: one per slot.
  BIFROST_RUNNER_PREPARED_SANDBOXES: z.coerce.number().int().min(0).max(256).optional(),
  // Where Prometheus metrics are served (GET /metrics), host:port; "off" serves none.
  BIFROST_RUNNER_METRICS_LISTEN: z
    .string()
    .refine(
      (value) =>
        value === "off" ||
        (listenPattern.test(value) && Number(value.slice(value.lastIndexOf(":") + 1)) <= 65535),
      'must be host:port (e.g. 127.0.0.1:9465, [::1]:9465, 0.0.0.0:9465) or "off"',
    )
    .default("127.0.0.1:9465"),
  BIFROST_LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
    .default("info"),
});

/** Variables whose values may hold credentials: a configuration error never repeats them. */
const credentialVariables = new Set(["BIFROST_RUNNER_KEY", "BIFROST_NATS_URL"]);

/** The runner's configuration, parsed once at start. */
export interface RunnerConfig {
  controlPlane: string;
  runnerKey: string;
  natsUrl: string;
  natsPrefix: string;
  capacity: number;
  progressEveryMs: number;
  name: string;
  workDir: string;
  heapLimitMb: number;
  preparedSandboxes: number;
  /** Host uid of starters and sandboxes when the runner is root (unset: 65534). */
  sandboxUid: number | undefined;
  /** host:port where metrics are served, or null for none. */
  metricsListen: string | null;
  logLevel: string;
}

/** What the default capacity is worked out from. */
export interface RunnerMachine {
  cpus: number;
  memoryBytes: number;
}

const thisMachine = (): RunnerMachine => ({
  cpus: availableParallelism(),
  memoryBytes: totalmem(),
});

/**
 * Slots when BIFROST_RUNNER_CAPACITY is not set: two per CPU (a workflow mostly waits on the
 * APIs it calls, so one per CPU would leave the CPUs idle; the benchmark's CPU-bound trivial
 * workflow also runs a little faster with two), but no more than three quarters of the memory
 * holds at each sandbox's cgroup limit, and at least one.
 */
export function defaultCapacity(machine: RunnerMachine): number {
  const byMemory = Math.floor((0.75 * machine.memoryBytes) / defaultProcessLimits.memoryBytes);
  return Math.max(1, Math.min(2 * machine.cpus, byMemory, 256));
}

/** Parses the environment, listing every bad variable at once. */
export function loadRunnerConfig(
  env: NodeJS.ProcessEnv = process.env,
  machine: RunnerMachine = thisMachine(),
): RunnerConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    // Each bad variable with its value, except those that may hold credentials.
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      const value = env[name];
      const got =
        value === undefined || credentialVariables.has(name)
          ? ""
          : ` (got ${JSON.stringify(value)})`;
      return `${issue.path.join(".")}: ${issue.message}${got}`;
    });
    throw new Error(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  const v = parsed.data;
  const capacity = v.BIFROST_RUNNER_CAPACITY ?? defaultCapacity(machine);
  return {
    controlPlane: v.BIFROST_CONTROL_PLANE,
    runnerKey: v.BIFROST_RUNNER_KEY,
    natsUrl: v.BIFROST_NATS_URL,
    natsPrefix: v.BIFROST_NATS_PREFIX,
    capacity,
    progressEveryMs: v.BIFROST_RUNNER_PROGRESS_MS,
    name: v.BIFROST_RUNNER_NAME,
    workDir: resolve(v.BIFROST_RUNNER_WORK_DIR),
    heapLimitMb: v.BIFROST_RUNNER_HEAP_MB,
    preparedSandboxes: v.BIFROST_RUNNER_PREPARED_SANDBOXES ?? capacity,
    sandboxUid: v.BIFROST_RUNNER_SANDBOX_UID,
    metricsListen:
      v.BIFROST_RUNNER_METRICS_LISTEN === "off" ? null : v.BIFROST_RUNNER_METRICS_LISTEN,
    logLevel: v.BIFROST_LOG_LEVEL,
  };
}
