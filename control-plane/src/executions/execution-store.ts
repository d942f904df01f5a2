import { createHash, randomBytes } from "node:crypto";
import { validateParams } from "@bifrost/sdk/params";
import { type Actor, recordAudit, systemActor } from "../audit/audit-log.js";
import type { ConfigStore } from "../config-store/config-store.js";
import type { Fragment, Sql } from "../db/postgres.js";
import { failedPrecondition, invalidArgument, notFound, unauthenticated } from "../errors.js";
import type { SecretStore } from "../secrets/secret-store.js";
import {
  type DataProviderRecord,
  validateWorkflowName,
  type WorkflowRecord,
  type WorkflowStore,
} from "../workflows/workflow-store.js";

/** Where an execution stands. Terminal: succeeded, failed, timed_out, cancelled. */
export type ExecutionStatus =
  | "queued"
  | "running"
  | "succeeded"
  | "failed"
  | "timed_out"
  | "cancelled";
export const terminalStatuses: ReadonlySet<ExecutionStatus> = new Set([
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
]);

/** What an execution runs: a workflow, or a data provider (its name in `workflow`). */
export type ExecutionKind = "workflow" | "data_provider";

/** Largest params accepted, as JSON bytes: executions carry data, not payloads. */
export const maxParamsBytes = 256 * 1024;

/** The platform default when a workflow declares no timeout. */
export const defaultTimeoutSeconds = 300;

/** A failure as recorded. */
export interface ExecutionErrorRecord {
  name: string;
  message: string;
  stack: string;
  kind: string;
  retryable: boolean;
}

export interface ExecutionRecord {
  id: string;
  organizationId: string;
  kind: ExecutionKind;
  workflow: string;
  modulePath: string;
  network: string[];
  timeoutSeconds: number;
  status: ExecutionStatus;
  params: Record<string, unknown>;
  result: unknown;
  error: ExecutionErrorRecord | null;
  variables: Record<string, unknown>;
  startedByUserId: string | null;
  /** The fire time, when a workflow's schedule started this run (then no user did). */
  scheduledFor: Date | null;
  runnerName: string | null;
  attempt: number;
  cancelRequested: boolean;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

interface ExecutionRow {
  id: string;
  organization_id: string;
  kind: ExecutionKind;
  workflow: string;
  module_path: string;
  network: string[];
  timeout_seconds: number;
  status: ExecutionStatus;
  params: Record<string, unknown>;
  result: unknown;
  error: ExecutionErrorRecord | null;
  variables: Record<string, unknown>;
  started_by_user_id: string | null;
  scheduled_for: Date | null;
  runner_name: string | null;
  attempt: number;
  cancel_requested: boolean;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export const toExecutionRecord = (row: ExecutionRow): ExecutionRecord => ({
  id: row.id,
  organizationId: row.organization_id,
  kind: row.kind,
  workflow: row.workflow,
  modulePath: row.module_path,
  network: row.network,
  timeoutSeconds: row.timeout_seconds,
  status: row.status,
  params: row.params,
  result: row.result,
  error: row.error,
  variables: row.variables,
  startedByUserId: row.started_by_user_id,
  scheduledFor: row.scheduled_for,
  runnerName: row.runner_name,
  attempt: row.attempt,
  cancelRequested: row.cancel_requested,
  createdAt: row.created_at,
  startedAt: row.started_at,
  finishedAt: row.finished_at,
});

function checkParamsSize(params: Record<string, unknown>, field: string): void {
  const size = Buffer.byteLength(JSON.stringify(params));
  if (size > maxParamsBytes) {
    throw invalidArgument(
      `${field} are ${size} bytes of JSON; at most ${maxParamsBytes} bytes are allowed`,
    );
  }
}

/** Params' problems as one message, each naming its field. */
const paramsProblems = (errors: ReadonlyArray<{ field: string; message: string }>) =>
  errors.map((e) => `params.${e.field}: ${e.message}`).join("; ");

const hashToken = (token: string) => createHash("sha256").update(token).digest();

/** A row with its events as JSON columns (`eventColumns`) as a snapshot. */
function toSnapshot(row: ExecutionRow & SnapshotEvents<string>): ExecutionSnapshot {
  const { logs, checkpoints, ...record } = row;
  // JSON carries timestamps as text.
  return {
    record: toExecutionRecord(record),
    logs: logs.map((l) => ({ ...l, at: new Date(l.at) })),
    checkpoints: checkpoints.map((c) => ({ ...c, at: new Date(c.at) })),
  };
}

/** An execution's log lines and checkpoints; `At` is how their times are carried. */
interface SnapshotEvents<At> {
  logs: Array<{ sequence: string; at: At; level: string; message: string; data: unknown }>;
  checkpoints: Array<{ sequence: string; at: At; name: string; data: unknown }>;
}

/** The last log and checkpoint sequences a reader has seen (none: from the start). */
export interface EventsSeen {
  log?: string | undefined;
  checkpoint?: string | undefined;
}

/** An execution as one statement saw it: the record and its events (ExecutionStore.snapshot). */
export interface ExecutionSnapshot extends SnapshotEvents<Date> {
  record: ExecutionRecord;
}

/** Most workflow resolutions an execution store remembers (see `resolvedWorkflows`). */
const rememberedWorkflowsMax = 10_000;

/** What a queued execution is inserted with. */
interface QueuedRun {
  organizationId: string;
  kind: ExecutionKind;
  name: string;
  modulePath: string;
  network: string[];
  timeoutSeconds: number;
  params: Record<string, unknown>;
  /** The schedule's fire time, for a run a schedule starts. */
  scheduledFor?: Date;
}

/** Channel on which the end of an execution is announced (payload: its id). */
export const executionDoneChannel = "bifrost_execution_done";

/** Executions: their records and every state transition, each idempotent. */
export function createExecutionStore(deps: {
  sql: Sql;
  workflows: WorkflowStore;
  config: ConfigStore;
  secrets: SecretStore;
}) {
  const { sql } = deps;

  async function byToken(token: string): Promise<ExecutionRecord> {
    if (!token) throw unauthenticated("execution_token is required");
    const [row] = await sql<ExecutionRow[]>`
      select * from executions where token_hash = ${hashToken(token)} and status = 'running'`;
    if (!row) throw unauthenticated("execution token is not valid, or its execution has ended");
    return toExecutionRecord(row);
  }

  /**
   * Workflow resolutions this process has used, by organization and name. A start that finds
   * one inserts under the condition that the name still resolves to that very declaration
   * (`stillResolvesTo`), so the workflow's read costs no statement of its own and a stale entry
   * is never acted on: the insert does nothing, and the start resolves afresh.
   */
  const resolvedWorkflows = new Map<string, WorkflowRecord>();

  async function insertQueued(actor: Actor, run: QueuedRun): Promise<ExecutionRecord> {
    const record = await tryInsertQueued(actor, run);
    if (!record) throw failedPrecondition(`organization "${run.organizationId}" is inactive`);
    return record;
  }

  /** The queued execution, or undefined if the organization is inactive or `guard` is false. */
  async function tryInsertQueued(
    actor: Actor,
    run: QueuedRun,
    guard?: Fragment,
  ): Promise<ExecutionRecord | undefined> {
    // One statement, atomic on its own: the organization must be active (checked by the
    // insert itself, no window between a check and the insert), and the audit event is the
    // row `recordAudit` would write. Three round trips fewer than a transaction, on the path of
    // every execution.
    const details = {
      ...(run.kind === "workflow" ? { workflow: run.name } : { dataProvider: run.name }),
      ...(run.scheduledFor && { scheduledFor: run.scheduledFor.toISOString() }),
    };
    const [row] = await sql<ExecutionRow[]>`
      with created as (
        insert into executions (organization_id, kind, workflow, module_path, network, timeout_seconds, status,
          params, started_by_user_id, scheduled_for)
        select ${run.organizationId}, ${run.kind}, ${run.name}, ${run.modulePath}, ${run.network},
          ${run.timeoutSeconds}, 'queued', ${sql.json(run.params as never)}, ${actor.userId},
          ${run.scheduledFor ?? null}
        where exists (select 1 from organizations where id = ${run.organizationId} and active)
          and ${guard ?? sql`true`}
        ${
          // Each fire once, whichever replica gets there first (migration 0012).
          run.scheduledFor
            ? sql`on conflict (organization_id, workflow, scheduled_for) where scheduled_for is not null do nothing`
            : sql``
        }
        returning *),
      audited as (
        insert into audit_events (actor_user_id, actor_api_key_id, organization_id, action, target_type, target, details)
        select ${actor.userId}, ${actor.apiKeyId}, organization_id, 'execution.start', 'execution', id::text,
          ${sql.json(details as never)}
        from created)
      select * from created`;
    return row && toExecutionRecord(row);
  }

  /** The queued run of a workflow with params already checked against its schema. */
  function workflowRun(
    organizationId: string,
    workflow: WorkflowRecord,
    params: unknown,
  ): QueuedRun {
    return {
      organizationId,
      kind: "workflow",
      name: workflow.name,
      modulePath: workflow.modulePath,
      network: workflow.metadata.network,
      timeoutSeconds: workflow.metadata.timeoutSeconds ?? defaultTimeoutSeconds,
      params: params as Record<string, unknown>,
    };
  }

  /** An execution's log lines and checkpoints after `after`, as two JSON columns of a statement. */
  function eventColumns(alias: string, after: EventsSeen = {}): Fragment {
    return sql`
      coalesce((
        select json_agg(json_build_object('sequence', l.sequence::text, 'at', l.at,
            'level', l.level, 'message', l.message, 'data', l.data) order by l.sequence)
        from execution_logs l where l.execution_id = ${sql(alias)}.id and l.sequence > ${after.log ?? "0"}::bigint
      ), '[]'::json) as logs,
      coalesce((
        select json_agg(json_build_object('sequence', c.sequence::text, 'at', c.at,
            'name', c.name, 'data', c.data) order by c.sequence)
        from execution_checkpoints c where c.execution_id = ${sql(alias)}.id and c.sequence > ${after.checkpoint ?? "0"}::bigint
      ), '[]'::json) as checkpoints`;
  }

  return {
    /** Validates params against the resolved workflow's schema and records a queued execution. */
    async start(
      actor: Actor,
      organizationId: string,
      workflowName: string,
      params: Record<string, unknown>,
    ) {
      validateWorkflowName(workflowName);
      checkParamsSize(params, "params");
      const key = `${organizationId}\0${workflowName}`;
      const remembered = resolvedWorkflows.get(key);
      if (remembered) {
        // Refusals are never made on a remembered schema: a failed check resolves afresh.
        const checked = validateParams(remembered.metadata.params, params);
        if (checked.ok) {
          const guard = deps.workflows.stillResolvesTo(
            organizationId,
            workflowName,
            remembered.declarationId,
          );
          const record = await tryInsertQueued(
            actor,
            workflowRun(organizationId, remembered, checked.value),
            guard,
          );
          if (record) return record;
        }
        resolvedWorkflows.delete(key);
      }
      const { workflow } = await deps.workflows.resolve(organizationId, workflowName);
      const checked = validateParams(workflow.metadata.params, params);
      if (!checked.ok) {
        throw invalidArgument(paramsProblems(checked.errors));
      }
      const record = await insertQueued(
        actor,
        workflowRun(organizationId, workflow, checked.value),
      );
      if (resolvedWorkflows.size >= rememberedWorkflowsMax) resolvedWorkflows.clear();
      resolvedWorkflows.set(key, workflow);
      return record;
    },

    /**
     * Records the run a workflow's schedule fires at `fireAt`, for the declaration the
     * scheduler read, with the params' defaults; the insert itself decides whether it may.
     * `started` holds the new run; `fired` means a run of this fire exists already (another
     * replica's); `not_now` that nothing was started for now: the schedule's previous run is
     * still queued or running (the scheduler tries again while the fire is recent), the name
     * no longer resolves to this declaration, or the organization is inactive.
     */
    async startScheduled(
      organizationId: string,
      workflow: WorkflowRecord,
      fireAt: Date,
    ): Promise<{ started: ExecutionRecord } | "fired" | "not_now"> {
      const checked = validateParams(workflow.metadata.params, {});
      if (!checked.ok) {
        // Discovery refuses such a declaration (sdk meta-check); this names one recorded before.
        throw invalidArgument(
          `scheduled workflow "${workflow.name}" cannot start without params: ${paramsProblems(checked.errors)}`,
        );
      }
      const guard = sql`${deps.workflows.stillResolvesTo(
        organizationId,
        workflow.name,
        workflow.declarationId,
      )} and not exists (
        select 1 from executions p
        where p.organization_id = ${organizationId} and p.workflow = ${workflow.name}
          and p.scheduled_for is not null and p.status in ('queued', 'running'))`;
      const started = await tryInsertQueued(
        systemActor,
        { ...workflowRun(organizationId, workflow, checked.value), scheduledFor: fireAt },
        guard,
      );
      if (started) return { started };
      const [fired] = await sql`
        select 1 from executions
        where organization_id = ${organizationId} and workflow = ${workflow.name}
          and scheduled_for = ${fireAt}`;
      return fired ? "fired" : "not_now";
    },

    /**
     * Records a queued run of a resolved data provider with these inputs. A data provider
     * declares no network hosts (only the organization's apply) and no timeout: the caller's
     * deadline is its timeout.
     */
    async startDataProvider(
      actor: Actor,
      organizationId: string,
      provider: DataProviderRecord,
      inputs: Record<string, unknown>,
      timeoutSeconds: number,
    ) {
      checkParamsSize(inputs, "inputs");
      return insertQueued(actor, {
        organizationId,
        kind: "data_provider",
        name: provider.name,
        modulePath: provider.modulePath,
        network: [],
        timeoutSeconds,
        params: inputs,
      });
    },

    async get(id: string): Promise<ExecutionRecord> {
      const [row] = await sql<ExecutionRow[]>`select * from executions where id = ${id}`;
      if (!row) throw notFound(`execution "${id}" not found`);
      return toExecutionRecord(row);
    },

    /**
     * The record with its log lines and checkpoints, in sequence order, in one statement: one
     * consistent snapshot, where separate reads could show a record that ended without its
     * last lines. `after` skips what a watcher already has (sequences it last saw).
     */
    async snapshot(id: string, after: EventsSeen = {}): Promise<ExecutionSnapshot> {
      const [row] = await sql<(ExecutionRow & SnapshotEvents<string>)[]>`
        select e.*, ${eventColumns("e", after)} from executions e where e.id = ${id}`;
      if (!row) throw notFound(`execution "${id}" not found`);
      return toSnapshot(row);
    },

    async list(options: {
      organizationId: string;
      workflow?: string;
      kind?: ExecutionKind;
      status?: ExecutionStatus;
      createdAfter?: Date;
      createdBefore?: Date;
      before?: [string, string];
      limit: number;
    }): Promise<Array<ExecutionRecord & { cursor: [string, string] }>> {
      const rows = await sql<(ExecutionRow & { created_text: string })[]>`
        select *, created_at::text as created_text from executions
        where organization_id = ${options.organizationId}
          and ${options.workflow ? sql`workflow = ${validateWorkflowName(options.workflow)}` : sql`true`}
          and ${options.kind ? sql`kind = ${options.kind}` : sql`true`}
          and ${options.status ? sql`status = ${options.status}` : sql`true`}
          and ${options.createdAfter ? sql`created_at >= ${options.createdAfter}` : sql`true`}
          and ${options.createdBefore ? sql`created_at < ${options.createdBefore}` : sql`true`}
          and ${options.before ? sql`(created_at, id) < (${options.before[0]}::text::timestamptz, ${options.before[1]}::uuid)` : sql`true`}
        order by created_at desc, id desc limit ${options.limit}`;
      return rows.map((row) => ({ ...toExecutionRecord(row), cursor: [row.created_text, row.id] }));
    },

    /** A queued execution ends cancelled now; a running one is flagged for its runner. */
    async cancel(actor: Actor, id: string): Promise<ExecutionRecord> {
      const record = await sql.begin(async (tx) => {
        const [row] = await tx<
          ExecutionRow[]
        >`select * from executions where id = ${id} for update`;
        if (!row) throw notFound(`execution "${id}" not found`);
        if (terminalStatuses.has(row.status)) return toExecutionRecord(row);
        const [updated] =
          row.status === "queued"
            ? await tx<ExecutionRow[]>`
              update executions set status = 'cancelled', cancel_requested = true, finished_at = now(),
                error = ${tx.json({ name: "ExecutionError", message: "execution was cancelled before it started", stack: "", kind: "cancelled", retryable: false })}
              where id = ${id} returning *`
            : await tx<
                ExecutionRow[]
              >`update executions set cancel_requested = true where id = ${id} returning *`;
        await recordAudit(tx, actor, {
          organizationId: row.organization_id,
          action: "execution.cancel",
          targetType: "execution",
          target: id,
        });
        return toExecutionRecord(updated as ExecutionRow);
      });
      if (terminalStatuses.has(record.status))
        await sql`select pg_notify(${executionDoneChannel}, ${id})`;
      return record;
    },

    /**
     * Takes a queued (or, on redelivery, running) execution for this attempt and mints a
     * fresh token; an older attempt's token stops working. Returns undefined when it ended.
     * `alongside` are more columns for the same statement, which may read the organization's
     * id as `claimed.organization_id` (see `sandboxViewColumns`); the row they come back in is
     * `alongside` of the result.
     */
    async claim<Alongside extends object = object>(
      id: string,
      attempt: number,
      runnerName: string,
      alongside?: Fragment,
    ) {
      const token = randomBytes(32).toString("base64url");
      // Every claim is a new attempt, whatever the delivery count says: nats-server before
      // 2.10.14 can hand out a redelivery with the count of a first delivery after a delivery
      // to an expired pull failed (nats-server#5305, seen here on Debian's 2.9.10). The count
      // still wins when it is higher (deliveries no runner got to claim).
      // With the organization's name and who started it, which the runner hands to the
      // workflow: one statement.
      const [row] = await sql<
        (ExecutionRow & {
          organization_name: string;
          started_by_name: string | null;
          started_by_email: string | null;
        })[]
      >`
        with claimed as (
          update executions set status = 'running', attempt = greatest(${attempt}::int, attempt + 1),
            runner_name = ${runnerName},
            started_at = coalesce(started_at, now()), token_hash = ${hashToken(token)},
            -- A runner got the job, so it was stored: the claim records the dispatch too.
            dispatched_at = coalesce(dispatched_at, now())
          where id = ${id} and status in ('queued', 'running')
          returning *)
        select claimed.*, o.name as organization_name,
          u.display_name as started_by_name, u.email as started_by_email
          ${alongside ? sql`, ${alongside}` : sql``}
        from claimed join organizations o on o.id = claimed.organization_id
          left join users u on u.id = claimed.started_by_user_id`;
      if (!row) return undefined;
      const {
        organization_name: organizationName,
        started_by_name: startedByName,
        started_by_email: startedByEmail,
        ...execution
      } = row;
      return {
        execution: toExecutionRecord(execution),
        organizationName,
        startedBy: { name: startedByName ?? "", email: startedByEmail ?? "" },
        token,
        alongside: row as unknown as Alongside,
      };
    },

    byToken,

    async appendEvents(
      token: string,
      logs: Array<{ level: string; message: string; data?: unknown }>,
      checkpoints: Array<{ name: string; data?: unknown }>,
    ): Promise<{ cancelRequested: boolean }> {
      const execution = await byToken(token);
      if (logs.length) {
        await sql`insert into execution_logs ${sql(
          logs.map((l) => ({
            execution_id: execution.id,
            level: l.level,
            message: l.message,
            data: l.data === undefined ? null : sql.json(l.data as never),
          })),
        )}`;
      }
      if (checkpoints.length) {
        await sql`insert into execution_checkpoints ${sql(
          checkpoints.map((c) => ({
            execution_id: execution.id,
            name: c.name,
            data: c.data === undefined ? null : sql.json(c.data as never),
          })),
        )}`;
      }
      return { cancelRequested: execution.cancelRequested };
    },

    /** The SDK's calls for one execution, within its organization only. */
    async call(
      token: string,
      method: string,
      name: string,
      value: unknown,
    ): Promise<{ found: boolean; value?: unknown; secret?: boolean }> {
      const execution = await byToken(token);
      switch (method) {
        case "config.get": {
          const resolved = await deps.config.resolve(execution.organizationId, name);
          if (!resolved) return { found: false };
          const v = resolved.entry.value;
          if (v.type === "secret_ref") {
            const secret = await deps.secrets.reveal(execution.organizationId, v.value);
            return secret ? { found: true, value: secret.value, secret: true } : { found: false };
          }
          return { found: true, value: v.type === "int" ? Number(v.value) : v.value };
        }
        case "secrets.get": {
          const secret = await deps.secrets.reveal(execution.organizationId, name);
          return secret ? { found: true, value: secret.value, secret: true } : { found: false };
        }
        case "variables.get":
          return name in execution.variables
            ? { found: true, value: execution.variables[name] }
            : { found: false };
        case "variables.set":
          await sql`update executions set variables = variables || ${sql.json({ [name]: value ?? null } as never)}
            where id = ${execution.id}`;
          return { found: true };
        default:
          throw invalidArgument(
            `method "${method}" must be config.get, secrets.get, variables.get or variables.set`,
          );
      }
    },

    /**
     * Records the outcome of the current attempt; the token dies with it. Ends the execution
     * of `token` (which must be `executionId`'s, when given). With
     * `snapshot`, also returns it as it ended, logs and checkpoints included — what a caller
     * waiting for it reads next — from the same statement, for this replica to hand to its
     * own waiters (ExecutionWaiter.completing).
     */
    async complete(
      token: string,
      outcome: { status: ExecutionStatus; result?: unknown; error?: ExecutionErrorRecord },
      options: { snapshot?: boolean; executionId?: string } = {},
    ): Promise<ExecutionSnapshot | undefined> {
      if (!terminalStatuses.has(outcome.status))
        throw invalidArgument(`status "${outcome.status}" is not a terminal status`);
      if (!token) throw unauthenticated("execution_token is required");
      // One statement (the token check, the update and the announcement): this is on the
      // path of every execution, between the run ending and a waiting caller waking up. Its
      // events were all committed before it (the runner reports them before it completes).
      const [row] = await sql<(ExecutionRow & SnapshotEvents<string>)[]>`
        with ended as (
          update executions set status = ${outcome.status}, finished_at = now(), token_hash = null,
            result = ${outcome.result === undefined ? null : sql.json(outcome.result as never)},
            error = ${outcome.error ? sql.json(outcome.error as never) : null}
          where token_hash = ${hashToken(token)} and status = 'running'
            and ${options.executionId ? sql`id = ${options.executionId}` : sql`true`}
          returning ${options.snapshot ? sql`*` : sql`id`})
        select pg_notify(${executionDoneChannel}, ended.id::text) as notified
          ${options.snapshot ? sql`, ended.*, ${eventColumns("ended")}` : sql``}
        from ended`;
      if (!row) throw unauthenticated("execution token is not valid, or its execution has ended");
      if (!options.snapshot) return undefined;
      const { notified: _, ...snapshot } = row as typeof row & { notified: unknown };
      return toSnapshot(snapshot);
    },

    /**
     * Fails executions still running long after every delivery could have ended (each
     * attempt is bounded by the timeout plus the ack wait): the safety net for an advisory
     * that was missed while no control plane was listening. Returns the ids it failed.
     */
    async reconcileStale(policy: {
      maxDeliver: number;
      ackWaitMs: number;
      slackSeconds: number;
    }): Promise<string[]> {
      const rows = await sql<{ id: string }[]>`
        update executions set status = 'failed', finished_at = now(), token_hash = null,
          error = ${sql.json({
            name: "ExecutionLost",
            message:
              "the execution was still running long after its last possible attempt should have ended; its runner was lost",
            stack: "",
            kind: "lost",
            retryable: true,
          } as never)}
        where status = 'running'
          and started_at < now() - make_interval(secs => ${policy.maxDeliver}::int * (timeout_seconds + ${policy.ackWaitMs / 1000}::float8) + ${policy.slackSeconds}::int)
        returning id`;
      for (const row of rows) await sql`select pg_notify(${executionDoneChannel}, ${row.id})`;
      return rows.map((r) => r.id);
    },

    /** Records that the executions' jobs are stored in JetStream (their publish was acknowledged). */
    async markDispatched(ids: readonly string[]) {
      if (ids.length === 0) return;
      await sql`
        update executions set dispatched_at = now()
        where id = any(${ids as string[]}::uuid[]) and dispatched_at is null`;
    },

    /**
     * Queued executions whose job was never confirmed published and that are older than
     * `olderThanMs` (so a start still between its insert and its publish is left alone),
     * oldest first.
     */
    async undispatched(olderThanMs: number, limit: number) {
      return sql<{ id: string; organization_id: string }[]>`
        select id, organization_id from executions
        where status = 'queued' and dispatched_at is null
          and created_at < now() - make_interval(secs => ${olderThanMs / 1000}::float8)
        order by created_at limit ${limit}`;
    },

    /** Marks an execution failed for a reason outside the run (dispatch or delivery gave up). */
    async fail(id: string, error: ExecutionErrorRecord) {
      const updated = await sql`
        update executions set status = 'failed', finished_at = now(), token_hash = null, error = ${sql.json(error as never)}
        where id = ${id} and status in ('queued', 'running') returning 1`;
      if (updated.length) await sql`select pg_notify(${executionDoneChannel}, ${id})`;
    },
  };
}

/** The failure recorded for an execution whose job JetStream gave up on. */
export function lostExecutionError(deliveries: number): ExecutionErrorRecord {
  return {
    name: "ExecutionLost",
    message: `no runner finished the execution after ${deliveries} attempts (each runner stopped or died mid-run)`,
    stack: "",
    kind: "lost",
    retryable: true,
  };
}

/** The execution store's interface. */
export type ExecutionStore = ReturnType<typeof createExecutionStore>;
