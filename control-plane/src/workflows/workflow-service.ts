import type { Workflow as ProtoWorkflow, WorkflowServiceServer } from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import type { ConfigStore } from "../config-store/config-store.js";
import { scheduleTimeZoneOf, scheduleTimezoneKey } from "../config-store/platform-keys.js";
import { provenanceToProto } from "../grpc/provenance.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
import { nextFire } from "../schedules/scheduler.js";
import { parseUuid, scopeFromProto, scopeToProto } from "../scope.js";
import type { WorkflowRecord, WorkflowStore } from "./workflow-store.js";

function toProto(record: WorkflowRecord): ProtoWorkflow {
  const meta = record.metadata;
  return {
    scope: scopeToProto(record.scope),
    name: record.name,
    description: meta.description,
    category: meta.category,
    tags: meta.tags,
    timeoutSeconds: meta.timeoutSeconds ?? 0,
    schedule: meta.schedule ?? "",
    network: meta.network,
    params: meta.params.map((p) => ({
      name: p.name,
      type: p.type,
      label: p.label,
      required: p.required,
      defaultValue: p.default,
      helpText: p.helpText,
      validation: p.validation as { [key: string]: unknown } | undefined,
      dataProvider: p.dataProvider ?? "",
      items: p.items ?? "",
    })),
    modulePath: record.modulePath,
    exportName: record.exportName,
    discoveredAt: record.discoveredAt,
  };
}

/** gRPC handlers of WorkflowService. */
export function createWorkflowService(
  edge: EdgeDeps,
  policy: Policy,
  workflows: WorkflowStore,
  config: ConfigStore,
): WorkflowServiceServer {
  const rules = policy.WorkflowService;
  /** The organization's schedule time zone (UTC without one), read once per call that needs it. */
  const timeZoneOf = async (organizationId: string) =>
    scheduleTimeZoneOf(
      (await config.resolve(organizationId, scheduleTimezoneKey, { organizationChecked: true }))
        ?.entry.value,
    ) ?? "UTC";
  /** When a scheduled workflow next runs for an organization whose zone is `timeZone`. */
  const nextRun = (
    record: WorkflowRecord,
    timeZone: string,
  ): { nextRunAt?: Date; scheduleTimeZone: string } => {
    const schedule = record.metadata.schedule;
    const next = schedule ? nextFire(schedule, Date.now(), timeZone) : undefined;
    return next === undefined
      ? { scheduleTimeZone: "" }
      : { nextRunAt: new Date(next), scheduleTimeZone: timeZone };
  };
  return {
    listWorkflows: unary(edge, "ListWorkflows", rules.ListWorkflows, async (req) => ({
      workflows: (await workflows.list(scopeFromProto(req.scope))).map(toProto),
    })),
    listEffectiveWorkflows: unary(
      edge,
      "ListEffectiveWorkflows",
      rules.ListEffectiveWorkflows,
      async (req) => {
        const organizationId = parseUuid(req.organizationId, "organization_id");
        const effective = await workflows.listEffective(organizationId);
        const timeZone = effective.some((w) => w.workflow.metadata.schedule)
          ? await timeZoneOf(organizationId)
          : "UTC";
        return {
          workflows: effective.map((w) => ({
            workflow: toProto(w.workflow),
            provenance: provenanceToProto(w.provenance),
            ...nextRun(w.workflow, timeZone),
          })),
        };
      },
    ),
    getWorkflow: unary(edge, "GetWorkflow", rules.GetWorkflow, async (req) => {
      const organizationId = parseUuid(req.organizationId, "organization_id");
      const { workflow, provenance } = await workflows.resolve(organizationId, req.name);
      return {
        workflow: toProto(workflow),
        provenance: provenanceToProto(provenance),
        ...nextRun(workflow, workflow.metadata.schedule ? await timeZoneOf(organizationId) : "UTC"),
      };
    }),
  };
}
