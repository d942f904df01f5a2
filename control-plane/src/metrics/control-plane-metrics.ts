import { status as grpcStatus } from "@grpc/grpc-js";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Sql } from "../db/postgres.js";

/**
 * The control plane's Prometheus metrics, for operators: every RPC by method and status code
 * with its latency, the executions waiting for or holding a runner, and Node's process
 * metrics. No label carries tenant data: method names and status codes are fixed by the API,
 * and execution counts are totals over every organization (an operator's view; tenants see
 * their own executions through the API).
 */
export interface ControlPlaneMetrics {
  readonly registry: Registry;
  /** One RPC ended (`code`: its gRPC status). */
  rpc(method: string, code: grpcStatus, durationMs: number): void;
}

const rpcBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60];

export function createControlPlaneMetrics(options: { sql: Sql }): ControlPlaneMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "bifrost_control_plane_" });
  const handled = new Counter({
    name: "bifrost_grpc_server_handled_total",
    help: "RPCs completed, by method and gRPC status code.",
    labelNames: ["method", "code"] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "bifrost_grpc_server_handling_seconds",
    help: "Time from an RPC's arrival to its answer (for a stream: to its end), by method.",
    labelNames: ["method"] as const,
    buckets: rpcBuckets,
    registers: [registry],
  });
  new Gauge({
    name: "bifrost_executions_active",
    help: "Executions queued for a runner or running now, over every organization.",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      // The partial index executions_active_idx answers this without reading finished rows.
      // With the database away the series are left out rather than failing the whole scrape
      // (the process metrics still matter then) or repeating numbers that are no longer true.
      const rows = await options.sql<{ status: string; count: string }[]>`
        SELECT status, count(*) AS count FROM executions
        WHERE status IN ('queued', 'running') GROUP BY status`.catch(() => undefined);
      this.reset();
      if (!rows) return;
      const counts = new Map(rows.map((row) => [row.status, Number(row.count)]));
      for (const status of ["queued", "running"]) {
        this.labels({ status }).set(counts.get(status) ?? 0);
      }
    },
  });
  return {
    registry,
    rpc(method, code, durationMs) {
      // grpc-js's status enum maps a code back to its name: "OK", "NOT_FOUND".
      handled.labels({ method, code: grpcStatus[code] ?? String(code) }).inc();
      latency.labels({ method }).observe(durationMs / 1000);
    },
  };
}
