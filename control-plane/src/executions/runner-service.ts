import {
  ClaimExecutionResponse,
  ExecutionStatus as ProtoStatus,
  type RunnerServiceServer,
} from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import type { ConfigStore } from "../config-store/config-store.js";
import type { Sql } from "../db/postgres.js";
import { invalidArgument } from "../errors.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
import { buildImportMap } from "../modules/import-map.js";
import type { ModuleStore } from "../modules/module-store.js";
import { parseUuid } from "../scope.js";
import type { DispatchMarks } from "./dispatch-marks.js";
import { kindToProto, statusFromProto } from "./execution-service.js";
import type { ExecutionStore } from "./execution-store.js";
import type { ExecutionWaiter } from "./execution-waiter.js";
import { type SandboxViewColumns, sandboxViewColumns, sandboxViewOf } from "./sandbox-view.js";

const maxModulesPerCall = 2000;
const logLevels = new Set(["debug", "info", "warning", "error"]);

/** gRPC handlers of RunnerService: what a runner needs to run an execution, token-scoped. */
export function createRunnerService(
  edge: EdgeDeps,
  policy: Policy,
  deps: {
    executions: ExecutionStore;
    modules: ModuleStore;
    config: ConfigStore;
    sql: Sql;
    /** This replica's waiters: an execution completed here is handed to them as it ended. */
    waiter?: ExecutionWaiter;
    /** This replica's pending dispatch marks: a claim records the dispatch itself. */
    marks?: DispatchMarks;
  },
): RunnerServiceServer {
  const rules = policy.RunnerService;
  const { executions } = deps;
  return {
    claimExecution: unary(edge, "ClaimExecution", rules.ClaimExecution, async (req) => {
      if (req.attempt < 1) throw invalidArgument(`attempt ${req.attempt} must be at least 1`);
      const claim = await executions.claim<SandboxViewColumns>(
        parseUuid(req.executionId, "execution_id"),
        req.attempt,
        req.runnerName || "runner",
        sandboxViewColumns(deps),
      );
      if (!claim) return ClaimExecutionResponse.fromPartial({ claimed: false });
      deps.marks?.claimed(claim.execution.id);
      const { execution, organizationName, startedBy, token } = claim;
      const view = await sandboxViewOf(deps, execution.organizationId, claim.alongside);
      return {
        claimed: true,
        executionToken: token,
        organizationId: execution.organizationId,
        organizationName,
        startedBy: execution.startedByUserId ?? "",
        // A run no user started is the platform's: a schedule's (the only such start today).
        startedByName: execution.startedByUserId
          ? startedBy.name || startedBy.email
          : execution.scheduledFor
            ? "schedule"
            : "platform",
        startedByEmail: startedBy.email,
        workflow: execution.workflow,
        modulePath: execution.modulePath,
        network: execution.network,
        timeoutSeconds: execution.timeoutSeconds,
        params: execution.params,
        viewFingerprint: view.fingerprint,
        importMapJson: view.importMapJson,
        organizationHosts: view.organizationHosts,
        kind: kindToProto[execution.kind],
      };
    }),

    getExecutionView: unary(edge, "GetExecutionView", rules.GetExecutionView, async (req) => {
      const execution = await executions.byToken(req.executionToken);
      const view = await deps.modules.effectiveView(execution.organizationId);
      const entries = view.entries ?? [];
      return {
        fingerprint: view.fingerprint,
        entries: entries.map((e) => ({ path: e.path, contentHash: e.contentHash })),
        importMapJson: JSON.stringify(buildImportMap(entries.map((e) => e.path))),
      };
    }),

    getExecutionModules: unary(
      edge,
      "GetExecutionModules",
      rules.GetExecutionModules,
      async (req) => {
        const execution = await executions.byToken(req.executionToken);
        if (req.contentHashes.length > maxModulesPerCall) {
          throw invalidArgument(
            `at most ${maxModulesPerCall} content hashes per call, got ${req.contentHashes.length}`,
          );
        }
        const contents = await deps.modules.contents(
          { kind: "organization", organizationId: execution.organizationId },
          req.contentHashes,
        );
        return { contents: Object.fromEntries(contents) };
      },
    ),

    executionCall: unary(edge, "ExecutionCall", rules.ExecutionCall, async (req) => {
      const answer = await executions.call(req.executionToken, req.method, req.name, req.value);
      return { found: answer.found, value: answer.value, secret: answer.secret === true };
    }),

    reportExecutionEvents: unary(
      edge,
      "ReportExecutionEvents",
      rules.ReportExecutionEvents,
      async (req) => {
        for (const log of req.logs) {
          if (!logLevels.has(log.level))
            throw invalidArgument(`log level "${log.level}" must be debug, info, warning or error`);
        }
        return executions.appendEvents(
          req.executionToken,
          req.logs.map((l) => ({ level: l.level, message: l.message, data: l.data })),
          req.checkpoints.map((c) => ({ name: c.name, data: c.data })),
        );
      },
    ),

    runnerHeartbeat: unary(
      edge,
      "RunnerHeartbeat",
      rules.RunnerHeartbeat,
      async (req, { principal }) => {
        const name = req.runnerName.trim();
        if (!name || name.length > 200)
          throw invalidArgument(`runner_name "${name.slice(0, 40)}" must be 1–200 characters`);
        if (req.capacity < 0 || req.inFlight < 0)
          throw invalidArgument("capacity and in_flight must not be negative");
        await deps.sql`
        insert into runners (name, user_id, capacity, in_flight, version)
        values (${name}, ${principal.userId}, ${req.capacity}, ${req.inFlight}, ${req.version})
        on conflict (name) do update set user_id = excluded.user_id, capacity = excluded.capacity,
          in_flight = excluded.in_flight, version = excluded.version, last_heartbeat_at = now()`;
        return {};
      },
    ),

    listRunners: unary(edge, "ListRunners", rules.ListRunners, async () => {
      const rows = await deps.sql<
        {
          name: string;
          capacity: number;
          in_flight: number;
          version: string;
          registered_at: Date;
          last_heartbeat_at: Date;
          alive: boolean;
        }[]
      >`select *, last_heartbeat_at > now() - interval '30 seconds' as alive from runners order by name`;
      return {
        runners: rows.map((r) => ({
          name: r.name,
          capacity: r.capacity,
          inFlight: r.in_flight,
          version: r.version,
          registeredAt: r.registered_at,
          lastHeartbeatAt: r.last_heartbeat_at,
          alive: r.alive,
        })),
      };
    }),

    completeExecution: unary(edge, "CompleteExecution", rules.CompleteExecution, async (req) => {
      const status = statusFromProto(req.status);
      if (
        !status ||
        req.status === ProtoStatus.EXECUTION_STATUS_QUEUED ||
        req.status === ProtoStatus.EXECUTION_STATUS_RUNNING
      ) {
        throw invalidArgument(`status ${req.status} must be a terminal execution status`);
      }
      const executionId = req.executionId ? parseUuid(req.executionId, "execution_id") : undefined;
      const complete = (snapshot: boolean) =>
        executions.complete(
          req.executionToken,
          {
            status,
            ...(req.result !== undefined && { result: req.result }),
            ...(req.error && { error: req.error }),
          },
          { snapshot, ...(executionId && { executionId }) },
        );
      // Someone on this replica waits for it (a StartExecution with wait_for_result): the
      // ended execution comes back from the completing statement and is handed to them, which
      // saves their read. Otherwise nothing more than the update is asked of the database.
      const waiter = deps.waiter;
      if (waiter && executionId && waiter.waitingFor(executionId)) {
        await waiter.completing(executionId, () => complete(true));
      } else {
        await complete(false);
      }
      return {};
    }),
  };
}
