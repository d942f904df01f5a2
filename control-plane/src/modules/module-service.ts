import type { ModuleServiceServer, Module as ProtoModule } from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import {
  decodePageToken,
  encodePageToken,
  isStringPosition,
  pageSize,
} from "../grpc/pagination.js";
import { provenanceToProto } from "../grpc/provenance.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
import { parseUuid, scopeFromProto, scopeToProto } from "../scope.js";
import type { ModuleRecord, ModuleStore } from "./module-store.js";

const listPage = { default: 100, max: 1000 };

function toProto(module: ModuleRecord): ProtoModule {
  return {
    scope: scopeToProto(module.scope),
    path: module.path,
    content: module.content,
    contentHash: module.contentHash,
    sizeBytes: String(module.sizeBytes),
    createdAt: module.createdAt,
    updatedAt: module.updatedAt,
    discoveryStatus: module.discovery?.status ?? "",
    discoveryError: module.discovery?.error ?? "",
  };
}

/** gRPC handlers of ModuleService. */
export function createModuleService(
  edge: EdgeDeps,
  policy: Policy,
  modules: ModuleStore,
  /** Called after every write that changed modules (wakes discovery). */
  onModulesChanged: () => void = () => {},
): ModuleServiceServer {
  const rules = policy.ModuleService;
  return {
    putModule: unary(edge, "PutModule", rules.PutModule, async (req, { actor }) => {
      const { module, changed } = await modules.put(
        actor,
        scopeFromProto(req.scope),
        req.path,
        req.content,
      );
      if (changed) onModulesChanged();
      return { module: toProto({ ...module, content: "" }), changed };
    }),

    getModule: unary(edge, "GetModule", rules.GetModule, async (req) => ({
      module: toProto(await modules.get(scopeFromProto(req.scope), req.path)),
    })),

    resolveModule: unary(edge, "ResolveModule", rules.ResolveModule, async (req) => {
      const { module, provenance } = await modules.resolve(
        parseUuid(req.organizationId, "organization_id"),
        req.path,
      );
      return { module: toProto(module), provenance: provenanceToProto(provenance) };
    }),

    deleteModule: unary(edge, "DeleteModule", rules.DeleteModule, async (req, { actor }) => {
      await modules.delete(actor, scopeFromProto(req.scope), req.path);
      onModulesChanged();
      return {};
    }),

    listModules: unary(edge, "ListModules", rules.ListModules, async (req) => {
      const limit = pageSize(req.pageSize, listPage);
      const after = decodePageToken(req.pageToken, isStringPosition) ?? "";
      const rows = await modules.list(scopeFromProto(req.scope), {
        prefix: req.pathPrefix,
        after,
        limit,
      });
      const last = rows.length === limit ? rows[rows.length - 1] : undefined;
      return { modules: rows.map(toProto), nextPageToken: last ? encodePageToken(last.path) : "" };
    }),

    listEffectiveModules: unary(
      edge,
      "ListEffectiveModules",
      rules.ListEffectiveModules,
      async (req) => {
        const limit = pageSize(req.pageSize, listPage);
        const after = decodePageToken(req.pageToken, isStringPosition) ?? "";
        const rows = await modules.listEffective(parseUuid(req.organizationId, "organization_id"), {
          prefix: req.pathPrefix,
          after,
          limit,
        });
        const last = rows.length === limit ? rows[rows.length - 1] : undefined;
        return {
          modules: rows.map((r) => ({
            module: toProto(r.module),
            provenance: provenanceToProto(r.provenance),
          })),
          nextPageToken: last ? encodePageToken(last.module.path) : "",
        };
      },
    ),

    getEffectiveView: unary(edge, "GetEffectiveView", rules.GetEffectiveView, async (req) => {
      const view = await modules.effectiveView(
        parseUuid(req.organizationId, "organization_id"),
        req.knownFingerprint || undefined,
      );
      return {
        fingerprint: view.fingerprint,
        unchanged: view.entries === undefined,
        entries: (view.entries ?? []).map((e) => ({
          path: e.path,
          contentHash: e.contentHash,
          provenance: provenanceToProto(e.provenance),
        })),
      };
    }),

    getImportMap: unary(edge, "GetImportMap", rules.GetImportMap, async (req) => {
      const { fingerprint, importMap } = await modules.importMap(
        parseUuid(req.organizationId, "organization_id"),
      );
      return { importMapJson: JSON.stringify(importMap), fingerprint };
    }),
  };
}
