import type {
  AuditServiceServer,
  ConfigServiceServer,
  ExecutionServiceServer,
  GitBindingServiceServer,
  IdentityServiceServer,
  ModuleServiceServer,
  OrganizationServiceServer,
  RunnerServiceServer,
  SecretServiceServer,
  WorkflowServiceServer,
} from "@bifrost/proto";
import type { handleServerStreamingCall, handleUnaryCall } from "@grpc/grpc-js";
import { invalidArgument, notFound, permissionDenied } from "../errors.js";
import type { Rule } from "../grpc/unary.js";
import type { IdentityStore } from "../identity/identity-store.js";
import type { Principal } from "../identity/principal.js";
import { parseUuid, type Scope, scopeFromProto } from "../scope.js";
import {
  requireOrganizationRole,
  requirePlatformAdmin,
  requireScopeRead,
  requireScopeWrite,
  requireSelfOrPlatformAdmin,
} from "./authorize.js";

type RequestOf<H> =
  H extends handleUnaryCall<infer Req, unknown>
    ? Req
    : H extends handleServerStreamingCall<infer Req, unknown>
      ? Req
      : never;
type RulesFor<S> = { [M in keyof S as Capitalize<string & M>]: Rule<RequestOf<S[M]>> };

/** The authorization rule of every RPC, by service and method. The type makes a missing rule a compile error. */
export interface Policy {
  OrganizationService: RulesFor<OrganizationServiceServer>;
  IdentityService: RulesFor<IdentityServiceServer>;
  ModuleService: RulesFor<ModuleServiceServer>;
  ConfigService: RulesFor<ConfigServiceServer>;
  SecretService: RulesFor<SecretServiceServer>;
  AuditService: RulesFor<AuditServiceServer>;
  WorkflowService: RulesFor<WorkflowServiceServer>;
  ExecutionService: RulesFor<ExecutionServiceServer>;
  RunnerService: RulesFor<RunnerServiceServer>;
  GitBindingService: RulesFor<GitBindingServiceServer>;
}

/** Lookups rules need beyond the principal. */
export interface PolicyLookups {
  /** The organization an execution belongs to, or undefined when there is no such execution. */
  executionOrganization(id: string): Promise<string | undefined>;
  /** The scope a git binding belongs to, or undefined when there is no such binding. */
  gitBindingScope(id: string): Promise<Scope | undefined>;
  /** The scope of the binding a git sync run belongs to, or undefined when there is no such run. */
  gitSyncScope(id: string): Promise<Scope | undefined>;
}

const anyAuthenticated: Rule<unknown> = () => {};

/**
 * Who may call what. Platform admins: everything. Org admins: their organization's modules,
 * config, secrets, members and audit trail, and read access to the global scope. Org members:
 * read their organization (executions come with the next API). Everyone: their own
 * principal and API keys.
 */
export function createPolicy(identity: IdentityStore, lookups: PolicyLookups): Policy {
  // Someone else's execution looks exactly like a missing one.
  const memberOfExecution = async (id: string, p: Principal) => {
    if (p.platformAdmin) return;
    const organizationId = await lookups.executionOrganization(id);
    if (!organizationId || !p.memberships.has(organizationId))
      throw notFound(`execution "${id}" not found`);
    requireOrganizationRole(p, organizationId, "member");
  };
  // Bindings are administered like their scope's modules; someone else's binding (or a
  // global one, for anyone but platform admins) looks exactly like a missing one.
  const adminOfScope = async (scope: Scope | undefined, missing: string, p: Principal) => {
    if (scope && p.platformAdmin) return;
    if (!scope || scope.kind === "global" || !p.memberships.has(scope.organizationId)) {
      throw notFound(missing);
    }
    requireOrganizationRole(p, scope.organizationId, "admin");
  };
  const adminOfBinding = async (rawId: string, p: Principal) => {
    const id = parseUuid(rawId, "id");
    await adminOfScope(await lookups.gitBindingScope(id), `git binding "${id}" not found`, p);
  };
  const requireRunner = (p: Principal) => {
    if (!p.runner) throw permissionDenied("only runner identities may call RunnerService");
  };

  const orgAdmin =
    (id: string, field = "organization_id"): Rule<unknown> =>
    (_r, p) =>
      requireOrganizationRole(p, parseUuid(id, field), "admin");

  return {
    OrganizationService: {
      CreateOrganization: (_r, p) => requirePlatformAdmin(p, "create organizations"),
      GetOrganization: (r, p) => requireOrganizationRole(p, parseUuid(r.id, "id"), "member"),
      ListOrganizations: anyAuthenticated,
      UpdateOrganization: (_r, p) => requirePlatformAdmin(p, "update organizations"),
      DeleteOrganization: (_r, p) => requirePlatformAdmin(p, "delete organizations"),
    },
    IdentityService: {
      GetCurrentPrincipal: anyAuthenticated,
      CreateUser: (r, p) => {
        if (p.platformAdmin) return;
        if (r.runner) throw permissionDenied("only platform admins may create runner identities");
        if (!r.organizationId)
          throw permissionDenied("only platform admins may create users outside an organization");
        if (r.platformAdmin)
          throw permissionDenied("only platform admins may create platform admins");
        requireOrganizationRole(p, parseUuid(r.organizationId, "organization_id"), "admin");
      },
      GetUser: async (r, p) => {
        const id = parseUuid(r.id, "id");
        if (p.platformAdmin || p.userId === id) return;
        const theirs = await identity.organizationsOfUser(id);
        const adminOfOne = theirs.some((org) => p.memberships.get(org)?.role === "admin");
        if (!adminOfOne) throw permissionDenied(`caller may not read user "${id}"`);
      },
      ListUsers: (r, p) => {
        if (p.platformAdmin) return;
        if (!r.organizationId)
          throw permissionDenied("only platform admins may list all users; set organization_id");
        requireOrganizationRole(p, parseUuid(r.organizationId, "organization_id"), "admin");
      },
      UpdateUser: (r, p) => {
        const id = parseUuid(r.id, "id");
        if (p.platformAdmin) return;
        if (r.platformAdmin !== undefined)
          throw permissionDenied("only platform admins may change platform_admin");
        requireSelfOrPlatformAdmin(p, id, "update a user");
      },
      DeleteUser: (_r, p) => requirePlatformAdmin(p, "delete users"),
      SetMembership: (r, p) => orgAdmin(r.organizationId)(r, p),
      RemoveMembership: (r, p) => orgAdmin(r.organizationId)(r, p),
      ListMemberships: (r, p) => {
        if (r.organizationId && r.userId)
          throw invalidArgument("set only one of organization_id and user_id");
        if (r.organizationId) return orgAdmin(r.organizationId)(r, p);
        if (!r.userId) throw invalidArgument("one of organization_id and user_id is required");
        requireSelfOrPlatformAdmin(p, parseUuid(r.userId, "user_id"), "list a user's memberships");
      },
      CreateApiKey: (r, p) =>
        requireSelfOrPlatformAdmin(
          p,
          r.userId ? parseUuid(r.userId, "user_id") : p.userId,
          "create api keys for a user",
        ),
      ListApiKeys: (r, p) =>
        requireSelfOrPlatformAdmin(
          p,
          r.userId ? parseUuid(r.userId, "user_id") : p.userId,
          "list a user's api keys",
        ),
      RevokeApiKey: async (r, p) => {
        const id = parseUuid(r.id, "id");
        if (p.platformAdmin) return;
        const key = await identity.getApiKey(id).catch(() => undefined);
        // Someone else's key looks exactly like a missing one.
        if (!key || key.userId !== p.userId) throw notFound(`api key "${id}" not found`);
      },
    },
    ModuleService: {
      PutModule: (r, p) => requireScopeWrite(p, scopeFromProto(r.scope)),
      GetModule: (r, p) => requireScopeRead(p, scopeFromProto(r.scope)),
      ResolveModule: (r, p) => orgAdmin(r.organizationId)(r, p),
      DeleteModule: (r, p) => requireScopeWrite(p, scopeFromProto(r.scope)),
      ListModules: (r, p) => requireScopeRead(p, scopeFromProto(r.scope)),
      ListEffectiveModules: (r, p) => orgAdmin(r.organizationId)(r, p),
      GetEffectiveView: (r, p) => orgAdmin(r.organizationId)(r, p),
      GetImportMap: (r, p) => orgAdmin(r.organizationId)(r, p),
    },
    ConfigService: {
      SetConfig: (r, p) => requireScopeWrite(p, scopeFromProto(r.scope)),
      GetConfig: (r, p) => requireScopeRead(p, scopeFromProto(r.scope)),
      ResolveConfig: (r, p) => orgAdmin(r.organizationId)(r, p),
      DeleteConfig: (r, p) => requireScopeWrite(p, scopeFromProto(r.scope)),
      ListConfig: (r, p) => requireScopeRead(p, scopeFromProto(r.scope)),
      ListEffectiveConfig: (r, p) => orgAdmin(r.organizationId)(r, p),
    },
    SecretService: {
      SetSecret: (r, p) => requireScopeWrite(p, scopeFromProto(r.scope)),
      DeleteSecret: (r, p) => requireScopeWrite(p, scopeFromProto(r.scope)),
      ListSecrets: (r, p) => requireScopeRead(p, scopeFromProto(r.scope)),
      ListEffectiveSecrets: (r, p) => orgAdmin(r.organizationId)(r, p),
    },
    WorkflowService: {
      // Declarations are code: read like modules. Members see what they can run.
      ListWorkflows: (r, p) => requireScopeRead(p, scopeFromProto(r.scope)),
      ListEffectiveWorkflows: (r, p) =>
        requireOrganizationRole(p, parseUuid(r.organizationId, "organization_id"), "member"),
      GetWorkflow: (r, p) =>
        requireOrganizationRole(p, parseUuid(r.organizationId, "organization_id"), "member"),
    },
    ExecutionService: {
      StartExecution: (r, p) =>
        requireOrganizationRole(p, parseUuid(r.organizationId, "organization_id"), "member"),
      GetExecution: (r, p) => memberOfExecution(parseUuid(r.id, "id"), p),
      ListExecutions: (r, p) =>
        requireOrganizationRole(p, parseUuid(r.organizationId, "organization_id"), "member"),
      CancelExecution: (r, p) => memberOfExecution(parseUuid(r.id, "id"), p),
      WatchExecution: (r, p) => memberOfExecution(parseUuid(r.id, "id"), p),
      // Running a data provider is running code in the organization: as StartExecution.
      GetDataProviderOptions: (r, p) =>
        requireOrganizationRole(p, parseUuid(r.organizationId, "organization_id"), "member"),
    },
    // Runner identities only; every call after the claim also needs the execution's token.
    RunnerService: {
      ClaimExecution: (_r, p) => requireRunner(p),
      GetExecutionView: (_r, p) => requireRunner(p),
      GetExecutionModules: (_r, p) => requireRunner(p),
      ExecutionCall: (_r, p) => requireRunner(p),
      ReportExecutionEvents: (_r, p) => requireRunner(p),
      CompleteExecution: (_r, p) => requireRunner(p),
      RunnerHeartbeat: (_r, p) => requireRunner(p),
      ListRunners: (_r, p) => requirePlatformAdmin(p, "list runners"),
    },
    GitBindingService: {
      BindRepository: (r, p) => {
        requireScopeWrite(p, scopeFromProto(r.scope));
        // A file URL names a path on the control plane's own host.
        if (!p.platformAdmin && /^\s*file:/i.test(r.repositoryUrl)) {
          throw permissionDenied("only platform admins may bind file:// repositories");
        }
      },
      GetGitBinding: (r, p) => adminOfBinding(r.id, p),
      ListGitBindings: (r, p) => {
        if (r.scope?.kind) return requireScopeWrite(p, scopeFromProto(r.scope));
        requirePlatformAdmin(p, "list every git binding; set scope");
      },
      UpdateGitBinding: (r, p) => adminOfBinding(r.id, p),
      UnbindRepository: (r, p) => adminOfBinding(r.id, p),
      SyncGitBinding: (r, p) => adminOfBinding(r.id, p),
      ListGitSyncs: (r, p) => adminOfBinding(r.bindingId, p),
      GetGitSync: async (r, p) => {
        const id = parseUuid(r.id, "id");
        await adminOfScope(await lookups.gitSyncScope(id), `git sync "${id}" not found`, p);
      },
    },
    AuditService: {
      ListAuditEvents: (r, p) => {
        if (r.organizationId && r.globalOnly)
          throw invalidArgument("set only one of organization_id and global_only");
        if (r.organizationId) return orgAdmin(r.organizationId)(r, p);
        requirePlatformAdmin(p, "list global or platform-wide audit events");
      },
    },
  };
}
