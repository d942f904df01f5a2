import {
  type ApiKey,
  type IdentityServiceServer,
  type Membership,
  MembershipRole as ProtoRole,
  type User,
} from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import { invalidArgument } from "../errors.js";
import { decodePageToken, encodePageToken, isUuidPosition, pageSize } from "../grpc/pagination.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
import { parseUuid } from "../scope.js";
import type {
  ApiKeyRecord,
  IdentityStore,
  MembershipRecord,
  UserRecord,
} from "./identity-store.js";
import type { MembershipRole } from "./principal.js";

const userToProto = (u: UserRecord): User => ({
  id: u.id,
  email: u.email,
  displayName: u.displayName,
  platformAdmin: u.platformAdmin,
  runner: u.runner,
  createdAt: u.createdAt,
});

const roleToProto = (role: MembershipRole): ProtoRole =>
  role === "admin" ? ProtoRole.MEMBERSHIP_ROLE_ADMIN : ProtoRole.MEMBERSHIP_ROLE_MEMBER;

function roleFromProto(role: ProtoRole, field = "role"): MembershipRole {
  if (role === ProtoRole.MEMBERSHIP_ROLE_ADMIN) return "admin";
  if (role === ProtoRole.MEMBERSHIP_ROLE_MEMBER) return "member";
  throw invalidArgument(`${field} ${role} must be MEMBERSHIP_ROLE_MEMBER or MEMBERSHIP_ROLE_ADMIN`);
}

const membershipToProto = (m: MembershipRecord): Membership => ({
  userId: m.userId,
  organizationId: m.organizationId,
  role: roleToProto(m.role),
  createdAt: m.createdAt,
});

const apiKeyToProto = (k: ApiKeyRecord): ApiKey => ({
  id: k.id,
  userId: k.userId,
  name: k.name,
  prefix: k.prefix,
  createdAt: k.createdAt,
  expiresAt: k.expiresAt ?? undefined,
  revokedAt: k.revokedAt ?? undefined,
  lastUsedAt: k.lastUsedAt ?? undefined,
});

/** gRPC handlers of IdentityService. */
export function createIdentityService(
  edge: EdgeDeps,
  policy: Policy,
  identity: IdentityStore,
): IdentityServiceServer {
  const rules = policy.IdentityService;
  return {
    getCurrentPrincipal: unary(
      edge,
      "GetCurrentPrincipal",
      rules.GetCurrentPrincipal,
      async (_req, { principal }) => ({
        user: userToProto(await identity.getUser(principal.userId)),
        apiKeyId: principal.apiKeyId,
        memberships: (await identity.listMemberships({ userId: principal.userId })).map(
          membershipToProto,
        ),
      }),
    ),

    createUser: unary(edge, "CreateUser", rules.CreateUser, async (req, { actor }) => {
      const membership = req.organizationId
        ? {
            organizationId: parseUuid(req.organizationId, "organization_id"),
            role: roleFromProto(req.role),
          }
        : undefined;
      const user = await identity.createUser(
        actor,
        {
          email: req.email,
          displayName: req.displayName,
          platformAdmin: req.platformAdmin,
          runner: req.runner === true,
        },
        membership,
      );
      return { user: userToProto(user) };
    }),

    getUser: unary(edge, "GetUser", rules.GetUser, async (req) => ({
      user: userToProto(await identity.getUser(parseUuid(req.id, "id"))),
    })),

    listUsers: unary(edge, "ListUsers", rules.ListUsers, async (req) => {
      const limit = pageSize(req.pageSize, { default: 100, max: 500 });
      const after = decodePageToken(req.pageToken, isUuidPosition);
      const rows = await identity.listUsers({
        limit,
        ...(after && { after }),
        ...(req.organizationId && {
          organizationId: parseUuid(req.organizationId, "organization_id"),
        }),
      });
      const last = rows.length === limit ? rows[rows.length - 1] : undefined;
      return { users: rows.map(userToProto), nextPageToken: last ? encodePageToken(last.id) : "" };
    }),

    updateUser: unary(edge, "UpdateUser", rules.UpdateUser, async (req, { actor }) => ({
      user: userToProto(
        await identity.updateUser(actor, parseUuid(req.id, "id"), {
          ...(req.displayName !== undefined && { displayName: req.displayName }),
          ...(req.platformAdmin !== undefined && { platformAdmin: req.platformAdmin }),
        }),
      ),
    })),

    deleteUser: unary(edge, "DeleteUser", rules.DeleteUser, async (req, { actor }) => {
      await identity.deleteUser(actor, parseUuid(req.id, "id"));
      return {};
    }),

    setMembership: unary(edge, "SetMembership", rules.SetMembership, async (req, { actor }) => ({
      membership: membershipToProto(
        await identity.setMembership(
          actor,
          parseUuid(req.userId, "user_id"),
          parseUuid(req.organizationId, "organization_id"),
          roleFromProto(req.role),
        ),
      ),
    })),

    removeMembership: unary(
      edge,
      "RemoveMembership",
      rules.RemoveMembership,
      async (req, { actor }) => {
        await identity.removeMembership(
          actor,
          parseUuid(req.userId, "user_id"),
          parseUuid(req.organizationId, "organization_id"),
        );
        return {};
      },
    ),

    listMemberships: unary(edge, "ListMemberships", rules.ListMemberships, async (req) => ({
      memberships: (
        await identity.listMemberships(
          req.organizationId
            ? { organizationId: parseUuid(req.organizationId, "organization_id") }
            : { userId: parseUuid(req.userId, "user_id") },
        )
      ).map(membershipToProto),
    })),

    createApiKey: unary(
      edge,
      "CreateApiKey",
      rules.CreateApiKey,
      async (req, { actor, principal }) => {
        const userId = req.userId ? parseUuid(req.userId, "user_id") : principal.userId;
        const { apiKey, secret } = await identity.createApiKey(
          actor,
          userId,
          req.name,
          req.expiresAt,
        );
        return { apiKey: apiKeyToProto(apiKey), secret };
      },
    ),

    listApiKeys: unary(edge, "ListApiKeys", rules.ListApiKeys, async (req, { principal }) => ({
      apiKeys: (
        await identity.listApiKeys(req.userId ? parseUuid(req.userId, "user_id") : principal.userId)
      ).map(apiKeyToProto),
    })),

    revokeApiKey: unary(edge, "RevokeApiKey", rules.RevokeApiKey, async (req, { actor }) => ({
      apiKey: apiKeyToProto(await identity.revokeApiKey(actor, parseUuid(req.id, "id"))),
    })),
  };
}
