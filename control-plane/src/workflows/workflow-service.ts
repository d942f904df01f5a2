import type { Workflow as ProtoWorkflow, WorkflowServiceServer } from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import { provenanceToProto } from "../grpc/provenance.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
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
): WorkflowServiceServer {
  const rules = policy.WorkflowService;
  return {
    listWorkflows: unary(edge, "ListWorkflows", rules.ListWorkflows, async (req) => ({
      workflows: (await workflows.list(scopeFromProto(req.scope))).map(toProto),
    })),
    listEffectiveWorkflows: unary(
      edge,
      "ListEffectiveWorkflows",
      rules.ListEffectiveWorkflows,
      async (req) => ({
        workflows: (
          await workflows.listEffective(parseUuid(req.organizationId, "organization_id"))
        ).map((w) => ({
          workflow: toProto(w.workflow),
          provenance: provenanceToProto(w.provenance),
        })),
      }),
    ),
    getWorkflow: unary(edge, "GetWorkflow", rules.GetWorkflow, async (req) => {
      const { workflow, provenance } = await workflows.resolve(
        parseUuid(req.organizationId, "organization_id"),
        req.name,
      );
      return { workflow: toProto(workflow), provenance: provenanceToProto(provenance) };
    }),
  };
}
