import type { Organization, OrganizationServiceServer } from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import {
  decodePageToken,
  encodePageToken,
  isTextUuidPosition,
  pageSize,
} from "../grpc/pagination.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
import type { ModuleStore } from "../modules/module-store.js";
import { parseUuid } from "../scope.js";
import type { OrganizationRecord, OrganizationStore } from "./organization-store.js";

const toProto = (org: OrganizationRecord): Organization => ({
  id: org.id,
  name: org.name,
  active: org.active,
  createdAt: org.createdAt,
  updatedAt: org.updatedAt,
});

/** gRPC handlers of OrganizationService. */
export function createOrganizationService(
  edge: EdgeDeps,
  policy: Policy,
  organizations: OrganizationStore,
  modules: Pick<ModuleStore, "forgetOrganization">,
): OrganizationServiceServer {
  const rules = policy.OrganizationService;
  return {
    createOrganization: unary(
      edge,
      "CreateOrganization",
      rules.CreateOrganization,
      async (req, { actor }) => ({
        organization: toProto(await organizations.create(actor, req.name)),
      }),
    ),

    getOrganization: unary(edge, "GetOrganization", rules.GetOrganization, async (req) => ({
      organization: toProto(await organizations.get(parseUuid(req.id, "id"))),
    })),

    listOrganizations: unary(
      edge,
      "ListOrganizations",
      rules.ListOrganizations,
      async (req, { principal }) => {
        const limit = pageSize(req.pageSize, { default: 100, max: 500 });
        const after = decodePageToken(req.pageToken, isTextUuidPosition);
        const rows = await organizations.list({
          limit,
          ...(after && { after }),
          ...(!principal.platformAdmin && { onlyIds: [...principal.memberships.keys()] }),
        });
        const last = rows.length === limit ? rows[rows.length - 1] : undefined;
        return {
          organizations: rows.map(toProto),
          nextPageToken: last ? encodePageToken([last.name.toLowerCase(), last.id]) : "",
        };
      },
    ),

    updateOrganization: unary(
      edge,
      "UpdateOrganization",
      rules.UpdateOrganization,
      async (req, { actor }) => ({
        organization: toProto(
          await organizations.update(actor, parseUuid(req.id, "id"), {
            ...(req.name !== undefined && { name: req.name }),
            ...(req.active !== undefined && { active: req.active }),
          }),
        ),
      }),
    ),

    deleteOrganization: unary(
      edge,
      "DeleteOrganization",
      rules.DeleteOrganization,
      async (req, { actor }) => {
        const id = parseUuid(req.id, "id");
        const removed = await organizations.delete(actor, id, req.force);
        await modules.forgetOrganization(id);
        return {
          removed: Object.fromEntries(Object.entries(removed).map(([k, v]) => [k, String(v)])),
        };
      },
    ),
  };
}
