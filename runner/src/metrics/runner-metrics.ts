import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { PreparedSandboxes } from "../execute/prepared-sandboxes.js";

/**
 * The runner's Prometheus metrics, for fleet operators: slots and how busy they are, how
 * executions end and how long they take, how sandboxes were started. No label ever carries
 * tenant data (organization, workflow, params, messages): a metrics endpoint is read by
 * whoever operates the fleet, for every organization at once. Label values are closed sets;
 * an error kind is reported by the sandboxed SDK, which tenant code can forge, so a kind this
 * list does not know is counted as "other".
 */
export interface RunnerMetrics {
  readonly registry: Registry;
  /** A delivery the control plane did not let this runner claim (ended, or claimed elsewhere). */
  notClaimed(): void;
  /** A delivery the handler failed on: left for redelivery as the next attempt. */
  handlerFailed(): void;
  /** An execution this runner ran to an outcome and recorded. */
  finished(execution: FinishedExecution): void;
}

export interface FinishedExecution {
  status: "succeeded" | "failed" | "timed_out" | "cancelled";
  /** The error's kind when it did not succeed. */
  errorKind?: string;
  /** How its sandbox was started; absent when no sandbox ran (refused before it). */
  started?: "prepared" | "early" | "after_claim";
  /** From delivery to the outcome recorded, in milliseconds. */
  heldMs: number;
  /** The sandbox process's own time, in milliseconds (0 when none ran). */
  sandboxMs: number;
}

/** Error kinds the SDK (protocol.ts FailureKind) and the runner (execute-workflow.ts) produce. */
export const knownErrorKinds: ReadonlySet<string> = new Set([
  "user",
  "error",
  "permission",
  "invalid_result",
  "invalid_params",
  "load",
  "internal",
  "invalid_network",
  "timeout",
  "out_of_memory",
  "output_limit",
  "task_limit",
  "cancelled",
  "crashed",
  "protocol",
]);

const durationBuckets = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * A registry of its own per runner (two runners in one test process must not share counts),
 * with Node's process metrics (CPU, memory, event-loop delay) under the same prefix.
 */
export function createRunnerMetrics(options: {
  capacity: number;
  /** Slots in use now. */
  busy: () => number;
  /** The sandboxes prepared ahead of repeating jobs, when the runner prepares any. */
  prepared?: Pick<PreparedSandboxes, "idle" | "stats">;
}): RunnerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "bifrost_runner_" });
  new Gauge({
    name: "bifrost_runner_slots",
    help: "Executions this runner runs at once (its capacity).",
    registers: [registry],
  }).set(options.capacity);
  new Gauge({
    name: "bifrost_runner_slots_busy",
    help: "Slots holding a job now.",
    registers: [registry],
    collect() {
      this.set(options.busy());
    },
  });
  const executions = new Counter({
    name: "bifrost_runner_executions_total",
    help: "Executions run to an outcome, by status and, when not succeeded, the error's kind.",
    labelNames: ["status", "reason"] as const,
    registers: [registry],
  });
  const held = new Histogram({
    name: "bifrost_runner_execution_duration_seconds",
    help: "From a job's delivery to its outcome recorded at the control plane.",
    labelNames: ["status"] as const,
    buckets: durationBuckets,
    registers: [registry],
  });
  const sandbox = new Histogram({
    name: "bifrost_runner_sandbox_duration_seconds",
    help: "The sandboxed Deno process of an execution, from its start message to its exit.",
    buckets: durationBuckets,
    registers: [registry],
  });
  const starts = new Counter({
    name: "bifrost_runner_sandbox_starts_total",
    help: "Sandboxes of executions by how they were started: prepared ahead (a repeating job), early (from the job's hint, during the claim) or after the claim.",
    labelNames: ["how"] as const,
    registers: [registry],
  });
  const notClaimed = new Counter({
    name: "bifrost_runner_jobs_not_claimed_total",
    help: "Deliveries acknowledged without running: the execution had ended or another attempt held it.",
    registers: [registry],
  });
  const failures = new Counter({
    name: "bifrost_runner_job_failures_total",
    help: "Deliveries the runner failed to handle (control plane or NATS unreachable, …): redelivered as the next attempt.",
    registers: [registry],
  });
  const { prepared } = options;
  if (prepared) {
    new Gauge({
      name: "bifrost_runner_prepared_sandboxes_idle",
      help: "Sandboxes prepared ahead of a repeating job and waiting for it (an idle Deno, ~30 MB, each).",
      registers: [registry],
      collect() {
        this.set(prepared.idle());
      },
    });
    // The pool counts since start; a counter follows by the difference at each scrape.
    const seen = { prepared: 0, discarded: 0 };
    const follow = (name: "prepared" | "discarded", help: string) => {
      new Counter({
        name: `bifrost_runner_prepared_sandboxes_${name}_total`,
        help,
        registers: [registry],
        collect() {
          const now = prepared.stats()[name];
          if (now > seen[name]) this.inc(now - seen[name]);
          seen[name] = now;
        },
      });
    };
    follow("prepared", "Sandboxes started ahead of a repeating job.");
    follow(
      "discarded",
      "Prepared sandboxes no job took (expired, evicted or died): CPU spent for nothing.",
    );
  }
  // Zero series exist from the start, so a rate() over them works before the first event.
  for (const how of ["prepared", "early", "after_claim"]) starts.labels({ how }).inc(0);
  executions.labels({ status: "succeeded", reason: "none" }).inc(0);

  return {
    registry,
    notClaimed: () => notClaimed.inc(),
    handlerFailed: () => failures.inc(),
    finished(execution) {
      const reason =
        execution.status === "succeeded"
          ? "none"
          : execution.errorKind && knownErrorKinds.has(execution.errorKind)
            ? execution.errorKind
            : "other";
      executions.labels({ status: execution.status, reason }).inc();
      held.labels({ status: execution.status }).observe(execution.heldMs / 1000);
      if (execution.started) {
        starts.labels({ how: execution.started }).inc();
        sandbox.observe(execution.sandboxMs / 1000);
      }
    },
  };
}
