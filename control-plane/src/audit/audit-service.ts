import type { AuditServiceServer } from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import type { Sql } from "../db/postgres.js";
import { invalidArgument } from "../errors.js";
import {
  decodePageToken,
  encodePageToken,
  isTimestampUuidPosition,
  pageSize,
} from "../grpc/pagination.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
import { parseUuid } from "../scope.js";
import { type AuditFilter, listAuditEvents } from "./audit-store.js";

/** Checks the action filter: free text, but PostgreSQL cannot compare text holding NUL. */
function validateActionFilter(action: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(action)) {
    throw invalidArgument(`action ${JSON.stringify(action)} must not contain control characters`);
  }
  return action;
}

/** gRPC handlers of AuditService. */
export function createAuditService(edge: EdgeDeps, policy: Policy, sql: Sql): AuditServiceServer {
  return {
    listAuditEvents: unary(
      edge,
      "ListAuditEvents",
      policy.AuditService.ListAuditEvents,
      async (req) => {
        const limit = pageSize(req.pageSize, { default: 100, max: 500 });
        const before = decodePageToken(req.pageToken, isTimestampUuidPosition);
        const filter: AuditFilter = req.organizationId
          ? {
              kind: "organization",
              organizationId: parseUuid(req.organizationId, "organization_id"),
            }
          : req.globalOnly
            ? { kind: "global" }
            : { kind: "all" };
        const events = await listAuditEvents(sql, {
          filter,
          limit,
          ...(req.action && { action: validateActionFilter(req.action) }),
          ...(before && { before }),
        });
        const last = events.length === limit ? events[events.length - 1] : undefined;
        return {
          events: events.map((e) => ({
            id: e.id,
            actorUserId: e.actorUserId ?? "",
            actorApiKeyId: e.actorApiKeyId ?? "",
            organizationId: e.organizationId ?? "",
            action: e.action,
            targetType: e.targetType,
            target: e.target,
            details: e.details,
            createdAt: e.createdAt,
          })),
          nextPageToken: last ? encodePageToken(last.cursor) : "",
        };
      },
    ),
  };
}
