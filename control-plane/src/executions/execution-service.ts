import {
  type Execution,
  type ExecutionServiceServer,
  ExecutionKind as ProtoKind,
  ExecutionStatus as ProtoStatus,
  type SandboxBootHint,
} from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import { invalidArgument } from "../errors.js";
import {
  decodePageToken,
  encodePageToken,
  isTimestampUuidPosition,
  pageSize,
} from "../grpc/pagination.js";
import { serverStream } from "../grpc/server-stream.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
import { parseUuid } from "../scope.js";
import type { DataProviderOptionsService } from "./data-provider-options.js";
import { awaitExecution, type DispatchDeps, dispatchExecution } from "./dispatch.js";
import type {
  EventsSeen,
  ExecutionKind,
  ExecutionRecord,
  ExecutionStatus,
} from "./execution-store.js";
import { terminalStatuses } from "./execution-store.js";
import type { SandboxView } from "./sandbox-view.js";

const statusToProto: Record<ExecutionStatus, ProtoStatus> = {
  queued: ProtoStatus.EXECUTION_STATUS_QUEUED,
  running: ProtoStatus.EXECUTION_STATUS_RUNNING,
  succeeded: ProtoStatus.EXECUTION_STATUS_SUCCEEDED,
  failed: ProtoStatus.EXECUTION_STATUS_FAILED,
  timed_out: ProtoStatus.EXECUTION_STATUS_TIMED_OUT,
  cancelled: ProtoStatus.EXECUTION_STATUS_CANCELLED,
};

/** The store's status for a wire status (UNSPECIFIED = no filter). */
export function statusFromProto(status: ProtoStatus): ExecutionStatus | undefined {
  for (const [name, value] of Object.entries(statusToProto))
    if (value === status) return name as ExecutionStatus;
  if (status === ProtoStatus.EXECUTION_STATUS_UNSPECIFIED) return undefined;
  throw invalidArgument(`status ${status} is not an execution status`);
}

export { statusToProto };

/** The wire kind of each stored kind. */
export const kindToProto: Record<ExecutionKind, ProtoKind> = {
  workflow: ProtoKind.EXECUTION_KIND_WORKFLOW,
  data_provider: ProtoKind.EXECUTION_KIND_DATA_PROVIDER,
};

/** The boot a job's runner may start ahead of its claim (ExecutionJob.boot_hint). */
export function bootHint(record: ExecutionRecord, view: SandboxView): SandboxBootHint {
  return {
    kind: kindToProto[record.kind],
    workflow: record.workflow,
    modulePath: record.modulePath,
    network: record.network,
    organizationHosts: view.organizationHosts,
    viewFingerprint: view.fingerprint,
    importMapJson: view.importMapJson,
  };
}

/** The store's kind for a wire kind (UNSPECIFIED = no filter). */
export function kindFromProto(kind: ProtoKind): ExecutionKind | undefined {
  if (kind === ProtoKind.EXECUTION_KIND_WORKFLOW) return "workflow";
  if (kind === ProtoKind.EXECUTION_KIND_DATA_PROVIDER) return "data_provider";
  if (kind === ProtoKind.EXECUTION_KIND_UNSPECIFIED) return undefined;
  throw invalidArgument(`kind ${kind} is not an execution kind`);
}

/** An execution record on the wire (events included when given). */
export function executionToProto(
  record: ExecutionRecord,
  events?: {
    logs: ReadonlyArray<{
      sequence: string;
      at: Date;
      level: string;
      message: string;
      data: unknown;
    }>;
    checkpoints: ReadonlyArray<{ name: string; data: unknown; at: Date }>;
  },
): Execution {
  return {
    id: record.id,
    organizationId: record.organizationId,
    workflow: record.workflow,
    kind: kindToProto[record.kind],
    status: statusToProto[record.status],
    params: record.params,
    result: record.result ?? undefined,
    error: record.error ?? undefined,
    startedByUserId: record.startedByUserId ?? "",
    scheduledFor: record.scheduledFor ?? undefined,
    runnerId: record.runnerName ?? "",
    attempt: record.attempt,
    createdAt: record.createdAt,
    startedAt: record.startedAt ?? undefined,
    finishedAt: record.finishedAt ?? undefined,
    logs: (events?.logs ?? []).map((l) => ({
      sequence: l.sequence,
      time: l.at,
      level: l.level,
      message: l.message,
      data: l.data ?? undefined,
    })),
    checkpoints: (events?.checkpoints ?? []).map((c) => ({
      name: c.name,
      data: c.data ?? undefined,
      time: c.at,
    })),
    variables: record.variables,
  };
}

/** How often a watch looks for new log lines while an execution runs. */
const watchPollMs = 200;

/** gRPC handlers of ExecutionService. */
export function createExecutionService(
  edge: EdgeDeps,
  policy: Policy,
  deps: DispatchDeps & {
    dataProviders: DataProviderOptionsService;
    /** Reads the organization's sandbox view for the jobs' boot hints (none without it). */
    sandboxView?: (organizationId: string) => Promise<SandboxView>;
  },
): ExecutionServiceServer {
  const rules = policy.ExecutionService;
  const { executions } = deps;
  const full = async (id: string) => {
    const snapshot = await executions.snapshot(id);
    return executionToProto(snapshot.record, snapshot);
  };
  return {
    startExecution: unary(edge, "StartExecution", rules.StartExecution, async (req, { actor }) => {
      const organizationId = parseUuid(req.organizationId, "organization_id");
      if (req.waitTimeoutSeconds < 0 || req.waitTimeoutSeconds > 300) {
        throw invalidArgument(
          `wait_timeout_seconds ${req.waitTimeoutSeconds} must be between 0 and 300`,
        );
      }
      // The view is read alongside the insert, for the job's boot hint; without it the job
      // is only slower to start, never wrong.
      const view = deps.sandboxView?.(organizationId).catch(() => undefined);
      const record = await executions.start(actor, organizationId, req.workflow, req.params ?? {});
      const seen = await view;
      await dispatchExecution(deps, record, seen && bootHint(record, seen));
      // Just recorded: queued, with no log lines or checkpoints yet.
      if (!req.waitForResult) return { execution: executionToProto(record) };
      const deadline = Date.now() + (req.waitTimeoutSeconds || 30) * 1000;
      const ended = await awaitExecution(
        deps.waiter,
        record.id,
        deadline,
        () => executions.snapshot(record.id),
        (snapshot) => snapshot.record.status,
        (snapshot) => snapshot,
      );
      return { execution: executionToProto(ended.record, ended) };
    }),

    getExecution: unary(edge, "GetExecution", rules.GetExecution, async (req) => ({
      execution: await full(parseUuid(req.id, "id")),
    })),

    listExecutions: unary(edge, "ListExecutions", rules.ListExecutions, async (req) => {
      const limit = pageSize(req.pageSize, { default: 50, max: 500 });
      const before = decodePageToken(req.pageToken, isTimestampUuidPosition);
      const status = statusFromProto(req.status);
      const kind = kindFromProto(req.kind);
      const rows = await executions.list({
        organizationId: parseUuid(req.organizationId, "organization_id"),
        limit,
        ...(req.workflow && { workflow: req.workflow }),
        ...(status && { status }),
        ...(kind && { kind }),
        ...(req.createdAfter && { createdAfter: req.createdAfter }),
        ...(req.createdBefore && { createdBefore: req.createdBefore }),
        ...(before && { before }),
      });
      const last = rows.length === limit ? rows[rows.length - 1] : undefined;
      return {
        executions: rows.map((r) => ({ ...executionToProto(r), variables: {} })),
        nextPageToken: last ? encodePageToken(last.cursor) : "",
      };
    }),

    getDataProviderOptions: unary(
      edge,
      "GetDataProviderOptions",
      rules.GetDataProviderOptions,
      async (req, { actor }) => {
        const result = await deps.dataProviders.get(
          actor,
          parseUuid(req.organizationId, "organization_id"),
          req.dataProvider,
          req.inputs ?? {},
          { noCache: req.noCache, timeoutSeconds: req.timeoutSeconds },
        );
        return {
          options: result.options.map((o) => ({
            label: o.label,
            value: o.value,
            metadata: o.metadata,
          })),
          cached: result.cached,
          executionId: result.executionId,
          producedAt: result.producedAt,
        };
      },
    ),

    watchExecution: serverStream(
      edge,
      "WatchExecution",
      rules.WatchExecution,
      async (req, { send, signal }) => {
        const id = parseUuid(req.id, "id");
        const seen: EventsSeen = {};
        let lastStatus: ExecutionStatus | undefined;
        // Replays what is stored, then follows: each round reads only what is new; a completion
        // wakes the loop at once (NOTIFY), new log lines are picked up within watchPollMs.
        while (!signal.aborted) {
          const snapshot = await executions.snapshot(id, seen);
          const { record } = snapshot;
          const batch = executionToProto(record, snapshot);
          for (const log of batch.logs) send({ event: { $case: "log", value: log } });
          for (const checkpoint of batch.checkpoints)
            send({ event: { $case: "checkpoint", value: checkpoint } });
          seen.log = snapshot.logs.at(-1)?.sequence ?? seen.log;
          seen.checkpoint = snapshot.checkpoints.at(-1)?.sequence ?? seen.checkpoint;
          if (record.status !== lastStatus) {
            lastStatus = record.status;
            send({ event: { $case: "status", value: executionToProto(record) } });
          }
          if (terminalStatuses.has(record.status)) return;
          await deps.waiter.wait(id, watchPollMs);
        }
      },
    ),

    cancelExecution: unary(
      edge,
      "CancelExecution",
      rules.CancelExecution,
      async (req, { actor }) => {
        const record = await executions.cancel(actor, parseUuid(req.id, "id"));
        return { execution: executionToProto(record) };
      },
    ),
  };
}
