// The authorization matrix (DESIGN.md, "Identity and access"): every RPC of every service ×
// caller × target, each cell asserting the exact gRPC status through a real server.
//
// Callers: a platform admin, org A's admin, org A's member, a caller without a key, and a caller
// presenting org A's admin's revoked key. The last two are refused before any rule runs, so the
// table lists codes for the first three and the other two are UNAUTHENTICATED in every cell.
//
// Targets: "own" is org A, where the org admin and member belong (for the platform admin, just an
// organization); "foreign" is org B; "global" is the global scope. Where an RPC has no scope the
// row says what the column means or marks it not applicable with the reason. RPCs about users
// and keys add "self", the caller's own user; for them "own" / "foreign" / "global" mean a user
// of org A / of org B / of no organization.
//
// Each cell creates its own fixtures as the platform admin before the call, so writes never share
// a target and destructive RPCs only hit objects made for that cell.

import { randomUUID } from "node:crypto";
import {
  AuditServiceService,
  ConfigServiceService,
  ExecutionServiceService,
  GitBindingServiceService,
  IdentityServiceService,
  MembershipRole,
  ModuleServiceService,
  OrganizationServiceService,
  RunnerServiceService,
  type Scope,
  SecretServiceService,
  WorkflowServiceService,
} from "@bifrost/proto";
import { type ControlPlaneClient, connectControlPlane } from "@bifrost/runner/jobs";
import { type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ApiClients } from "../testing/grpc-clients.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";

const { OK, PERMISSION_DENIED: DENY, NOT_FOUND, FAILED_PRECONDITION } = status;
const { MEMBERSHIP_ROLE_ADMIN: ADMIN, MEMBERSHIP_ROLE_MEMBER: MEMBER } = MembershipRole;

const definitions = {
  OrganizationService: OrganizationServiceService,
  IdentityService: IdentityServiceService,
  ModuleService: ModuleServiceService,
  ConfigService: ConfigServiceService,
  SecretService: SecretServiceService,
  AuditService: AuditServiceService,
  WorkflowService: WorkflowServiceService,
  ExecutionService: ExecutionServiceService,
  RunnerService: RunnerServiceService,
  GitBindingService: GitBindingServiceService,
};
type Service = keyof typeof definitions;
/** One T per RPC of every service; a missing RPC is a compile error as well as a test failure. */
type PerRpc<T> = {
  [S in Service]: Record<Capitalize<string & keyof (typeof definitions)[S]>, T>;
};

type Target = "own" | "foreign" | "global" | "self";
/** Expected status for [platform admin, org admin, org member]. */
type Expected = readonly [platformAdmin: status, orgAdmin: status, orgMember: status];
/** A column that does not apply to the RPC, and why. */
interface NotApplicable {
  notApplicable: string;
}
interface Row {
  own: Expected | NotApplicable;
  foreign: Expected | NotApplicable;
  global: Expected | NotApplicable;
  /** The caller's own user, for RPCs that can target it. */
  self?: Expected;
  /** The target is a user of org A / of org B / of no organization rather than the scope itself. */
  targetsUsers?: true;
}
const row = (
  own: Row["own"],
  foreign: Row["foreign"],
  global: Row["global"],
  self?: Expected,
): Row => ({ own, foreign, global, ...(self && { self }) });
const userRow = (own: Expected, foreign: Expected, global: Expected, self: Expected): Row => ({
  ...row(own, foreign, global, self),
  targetsUsers: true,
});
const na = (reason: string): NotApplicable => ({ notApplicable: reason });
const noOwnerYet = na("a new organization belongs to no one yet");
const notRunner = na(
  "RunnerService has no scope: it is refused to every caller who is not a runner",
);
const noOrgNamed = na("the request names no organization");
const readsCaller = na("the request names no target: it reads the caller");
const notAnOrg = na("the global scope is not an organization");
const inAnOrg = na("a membership is always in an organization");
const orgIdOnly = na("the request names only an organization id");

// Where an RPC has no scope, the columns mean:
// - CreateOrganization, ListOrganizations: global = a platform-wide request naming no org.
// - CreateUser: the new user's organization, global = none. ListUsers: global = no org filter.
// - userRow (GetUser, UpdateUser, DeleteUser and the ApiKey RPCs): a user of org A / of org B /
//   of no organization; self = the caller. RevokeApiKey revokes a fresh key of that user.
// - SetMembership, RemoveMembership: a fresh user joining / leaving org A or B.
// - ListMemberships: own and foreign by organization_id; self by user_id.
// - ListAuditEvents: global = global_only.
// Someone else's API key answers like a missing one (policy.ts), hence RevokeApiKey's NOT_FOUND.
// DeleteUser on itself: the platform admin is the last one, which the platform never loses.
// biome-ignore format: the matrix is a table; aligned columns are the point
const matrix: PerRpc<Row> = {
  //                        own org             foreign org         global scope        self
  OrganizationService: {
    CreateOrganization:   row(noOwnerYet,       noOwnerYet,         [OK, DENY, DENY]),
    GetOrganization:      row([OK, OK, OK],     [OK, DENY, DENY],   notAnOrg),
    ListOrganizations:    row(noOrgNamed,       noOrgNamed,         [OK, OK, OK]),
    UpdateOrganization:   row([OK, DENY, DENY], [OK, DENY, DENY],   notAnOrg),
    DeleteOrganization:   row([OK, DENY, DENY], [OK, DENY, DENY],   notAnOrg),
  },
  IdentityService: {
    GetCurrentPrincipal:  row(readsCaller,      readsCaller,        readsCaller,        [OK, OK, OK]),
    CreateUser:           row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
    GetUser:          userRow([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY],   [OK, OK, OK]),
    ListUsers:            row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
    UpdateUser:       userRow([OK, DENY, DENY], [OK, DENY, DENY],   [OK, DENY, DENY],   [OK, OK, OK]),
    DeleteUser:       userRow([OK, DENY, DENY], [OK, DENY, DENY],   [OK, DENY, DENY],   [FAILED_PRECONDITION, DENY, DENY]),
    SetMembership:        row([OK, OK, DENY],   [OK, DENY, DENY],   inAnOrg),
    RemoveMembership:     row([OK, OK, DENY],   [OK, DENY, DENY],   inAnOrg),
    ListMemberships:      row([OK, OK, DENY],   [OK, DENY, DENY],   inAnOrg,            [OK, OK, OK]),
    CreateApiKey:     userRow([OK, DENY, DENY], [OK, DENY, DENY],   [OK, DENY, DENY],   [OK, OK, OK]),
    ListApiKeys:      userRow([OK, DENY, DENY], [OK, DENY, DENY],   [OK, DENY, DENY],   [OK, OK, OK]),
    RevokeApiKey:     userRow([OK, NOT_FOUND, NOT_FOUND], [OK, NOT_FOUND, NOT_FOUND], [OK, NOT_FOUND, NOT_FOUND], [OK, OK, OK]),
  },
  ModuleService: {
    PutModule:            row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
    GetModule:            row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, OK, DENY]),
    ResolveModule:        row([OK, OK, DENY],   [OK, DENY, DENY],   orgIdOnly),
    DeleteModule:         row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
    ListModules:          row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, OK, DENY]),
    ListEffectiveModules: row([OK, OK, DENY],   [OK, DENY, DENY],   orgIdOnly),
    GetEffectiveView:     row([OK, OK, DENY],   [OK, DENY, DENY],   orgIdOnly),
    GetImportMap:         row([OK, OK, DENY],   [OK, DENY, DENY],   orgIdOnly),
  },
  ConfigService: {
    SetConfig:            row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
    GetConfig:            row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, OK, DENY]),
    ResolveConfig:        row([OK, OK, DENY],   [OK, DENY, DENY],   orgIdOnly),
    DeleteConfig:         row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
    ListConfig:           row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, OK, DENY]),
    ListEffectiveConfig:  row([OK, OK, DENY],   [OK, DENY, DENY],   orgIdOnly),
  },
  SecretService: {
    SetSecret:            row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
    DeleteSecret:         row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
    ListSecrets:          row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, OK, DENY]),
    ListEffectiveSecrets: row([OK, OK, DENY],   [OK, DENY, DENY],   orgIdOnly),
  },
  AuditService: {
    ListAuditEvents:      row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
  },
  // GetWorkflow asks for a name nothing declares: an allowed caller learns it does not exist.
  WorkflowService: {
    ListWorkflows:          row([OK, OK, DENY], [OK, DENY, DENY], [OK, OK, DENY]),
    ListEffectiveWorkflows: row([OK, OK, OK],   [OK, DENY, DENY], orgIdOnly),
    GetWorkflow:            row([NOT_FOUND, NOT_FOUND, NOT_FOUND], [NOT_FOUND, DENY, DENY], orgIdOnly),
  },
  // No workflow is declared here: an allowed StartExecution learns the workflow does not
  // exist. Executions are looked up by id, and someone else's looks exactly like a missing
  // one (NOT_FOUND). The positive paths are in executions.integration.test.ts.
  ExecutionService: {
    StartExecution:  row([NOT_FOUND, NOT_FOUND, NOT_FOUND], [NOT_FOUND, DENY, DENY], orgIdOnly),
    GetExecution:    row([NOT_FOUND, NOT_FOUND, NOT_FOUND], [NOT_FOUND, NOT_FOUND, NOT_FOUND], orgIdOnly),
    ListExecutions:  row([OK, OK, OK],                      [OK, DENY, DENY],                orgIdOnly),
    CancelExecution: row([NOT_FOUND, NOT_FOUND, NOT_FOUND], [NOT_FOUND, NOT_FOUND, NOT_FOUND], orgIdOnly),
    WatchExecution:  row([NOT_FOUND, NOT_FOUND, NOT_FOUND], [NOT_FOUND, NOT_FOUND, NOT_FOUND], orgIdOnly),
    // As StartExecution: no provider is declared here, so an allowed caller learns it does not
    // exist. The positive paths are in data-provider-options.integration.test.ts.
    GetDataProviderOptions: row([NOT_FOUND, NOT_FOUND, NOT_FOUND], [NOT_FOUND, DENY, DENY], orgIdOnly),
  },
  // Runner identities only: none of these callers is one (the runner's own calls are in
  // executions.integration.test.ts).
  RunnerService: {
    ClaimExecution:        row([DENY, DENY, DENY], [DENY, DENY, DENY], notRunner),
    GetExecutionView:      row([DENY, DENY, DENY], [DENY, DENY, DENY], notRunner),
    GetExecutionModules:   row([DENY, DENY, DENY], [DENY, DENY, DENY], notRunner),
    ExecutionCall:         row([DENY, DENY, DENY], [DENY, DENY, DENY], notRunner),
    ReportExecutionEvents: row([DENY, DENY, DENY], [DENY, DENY, DENY], notRunner),
    CompleteExecution:     row([DENY, DENY, DENY], [DENY, DENY, DENY], notRunner),
    RunnerHeartbeat:       row([DENY, DENY, DENY], [DENY, DENY, DENY], notRunner),
    // Operators' view: platform admins only.
    ListRunners:           row([OK, DENY, DENY],   [OK, DENY, DENY],   notRunner),
  },
  // Bindings are administered like their scope's modules. Bindings and sync runs are looked
  // up by id: someone else's (and, for all but platform admins, the global one) looks
  // exactly like a missing one. The fixture repositories do not exist: syncs of them run and
  // report a failure, which is still an allowed call (OK).
  GitBindingService: {
    BindRepository:   row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
    GetGitBinding:    row([OK, OK, DENY],   [OK, NOT_FOUND, NOT_FOUND], [OK, NOT_FOUND, NOT_FOUND]),
    ListGitBindings:  row([OK, OK, DENY],   [OK, DENY, DENY],   [OK, DENY, DENY]),
    UpdateGitBinding: row([OK, OK, DENY],   [OK, NOT_FOUND, NOT_FOUND], [OK, NOT_FOUND, NOT_FOUND]),
    UnbindRepository: row([OK, OK, DENY],   [OK, NOT_FOUND, NOT_FOUND], [OK, NOT_FOUND, NOT_FOUND]),
    SyncGitBinding:   row([OK, OK, DENY],   [OK, NOT_FOUND, NOT_FOUND], [OK, NOT_FOUND, NOT_FOUND]),
    ListGitSyncs:     row([OK, OK, DENY],   [OK, NOT_FOUND, NOT_FOUND], [OK, NOT_FOUND, NOT_FOUND]),
    GetGitSync:       row([OK, OK, DENY],   [OK, NOT_FOUND, NOT_FOUND], [OK, NOT_FOUND, NOT_FOUND]),
  },
};

let cp: TestControlPlane;
let world: TenancyWorld;
let root: ApiClients;
let platformAdminUserId: string;

interface Caller {
  /** As it reads in a test name. */
  name: string;
  /** Its column in Expected; undefined when refused before any rule runs (UNAUTHENTICATED). */
  column: 0 | 1 | 2 | undefined;
  key(): string | undefined;
  /** Its own user, the "self" target; org A's admin stands in for the caller without a key. */
  userId(): string;
  /** Its role in its own organization, which throwaway "own" organizations copy. */
  role: MembershipRole | undefined;
}

// RunnerService is called the way runners call it, one client per caller's key.
const runnerClients = new Map<string, ControlPlaneClient>();
function runnerClient(caller: Caller): ControlPlaneClient {
  const key = caller.key() ?? "";
  let client = runnerClients.get(key);
  if (!client) {
    client = connectControlPlane(cp.address, key);
    runnerClients.set(key, client);
  }
  return client;
}

const callers: Caller[] = [
  {
    name: "a platform admin",
    column: 0,
    key: () => world.keys.platformAdmin,
    userId: () => platformAdminUserId,
    role: undefined,
  },
  {
    name: "an org admin",
    column: 1,
    key: () => world.keys.adminA,
    userId: () => world.users.adminA,
    role: ADMIN,
  },
  {
    name: "an org member",
    column: 2,
    key: () => world.keys.memberA,
    userId: () => world.users.memberA,
    role: MEMBER,
  },
  {
    name: "a caller without a key",
    column: undefined,
    key: () => undefined,
    userId: () => world.users.adminA,
    role: undefined,
  },
  {
    name: "a caller with a revoked key",
    column: undefined,
    key: () => world.keys.revoked,
    userId: () => world.users.adminA,
    role: ADMIN,
  },
];

interface Cell {
  target: Target;
  caller: Caller;
  /** Unique per cell, for names, paths and keys. */
  n: number;
}
type Call = (api: ApiClients) => Promise<unknown>;
/** Creates what the cell's request needs (as the platform admin) and returns the request. */
type Build = (cell: Cell) => Promise<Call>;

function required<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("expected a value in the fixture response");
  return value;
}

function orgOf(target: Target): string {
  if (target === "own") return world.orgA.id;
  if (target === "foreign") return world.orgB.id;
  throw new Error(`target "${target}" names no organization`);
}

function scopeOf(target: Target): Scope {
  return target === "global"
    ? { kind: { $case: "global", value: true } }
    : { kind: { $case: "organizationId", value: orgOf(target) } };
}

/** The caller ("self"), or a new user of org A ("own"), org B ("foreign") or none ("global"). */
async function userFor({ target, caller, n }: Cell): Promise<string> {
  if (target === "self") return caller.userId();
  const inOrg = target !== "global";
  const { user } = await root.identity.createUser({
    email: `user-${n}@matrix.test`,
    displayName: `user ${n}`,
    platformAdmin: false,
    organizationId: inOrg ? orgOf(target) : "",
    role: inOrg ? MEMBER : MembershipRole.MEMBERSHIP_ROLE_UNSPECIFIED,
  });
  return required(user).id;
}

/** A new organization where the caller has its org A role ("own") or org B's admin is admin. */
async function throwawayOrganization({ target, caller, n }: Cell): Promise<string> {
  const { organization } = await root.organizations.createOrganization({ name: `throwaway ${n}` });
  const id = required(organization).id;
  const [userId, role] =
    target === "own" ? [caller.userId(), caller.role] : [world.users.adminB, ADMIN];
  if (role !== undefined) await root.identity.setMembership({ userId, organizationId: id, role });
  return id;
}

async function moduleIn({ target, n }: Cell): Promise<string> {
  const path = `matrix/module-${n}.ts`;
  await root.modules.putModule({ scope: scopeOf(target), path, content: `export const n = ${n};` });
  return path;
}

async function configIn({ target, n }: Cell): Promise<string> {
  const key = `matrix.config-${n}`;
  const value = { kind: { $case: "stringValue" as const, value: `value ${n}` } };
  await root.config.setConfig({ scope: scopeOf(target), key, value, description: "" });
  return key;
}

async function secretIn({ target, n }: Cell): Promise<string> {
  const name = `matrix_secret_${n}`;
  await root.secrets.setSecret({ scope: scopeOf(target), name, value: `s${n}`, description: "" });
  return name;
}

const page = { pageSize: 0, pageToken: "" };

/**
 * The scope a git-binding cell works in, freed of any binding: a throwaway organization for
 * own/foreign (a scope holds one binding), the global scope after unbinding what it had.
 */
async function freeGitScope(cell: Cell): Promise<Scope> {
  if (cell.target !== "global") {
    return { kind: { $case: "organizationId", value: await throwawayOrganization(cell) } };
  }
  const global = scopeOf("global");
  const { bindings } = await root.git.listGitBindings({ scope: global });
  for (const binding of bindings) await root.git.unbindRepository({ id: binding.id });
  return global;
}

/** A binding (of a repository that does not exist) in the cell's scope; returns its id. */
async function bindingIn(cell: Cell): Promise<string> {
  const scope = await freeGitScope(cell);
  const { binding } = await root.git.bindRepository({
    scope,
    repositoryUrl: `file:///nonexistent/matrix-${cell.n}`,
    branch: "main",
    subfolder: "",
    credential: undefined,
    pollIntervalSeconds: 0,
  });
  return required(binding).id;
}

/** A request that needs no fixture. */
const plain =
  (request: (api: ApiClients, cell: Cell) => Promise<unknown>): Build =>
  async (cell) =>
  (api) =>
    request(api, cell);

const builders: PerRpc<Build> = {
  OrganizationService: {
    CreateOrganization: plain((api, { n }) =>
      api.organizations.createOrganization({ name: `created ${n}` }),
    ),
    GetOrganization: plain((api, { target }) =>
      api.organizations.getOrganization({ id: orgOf(target) }),
    ),
    ListOrganizations: plain((api) => api.organizations.listOrganizations(page)),
    UpdateOrganization: async (cell) => {
      const id = await throwawayOrganization(cell);
      return (api) => api.organizations.updateOrganization({ id, name: `renamed ${cell.n}` });
    },
    DeleteOrganization: async (cell) => {
      const id = await throwawayOrganization(cell);
      return (api) => api.organizations.deleteOrganization({ id, force: true });
    },
  },
  IdentityService: {
    GetCurrentPrincipal: plain((api) => api.identity.getCurrentPrincipal({})),
    CreateUser: plain((api, { target, n }) =>
      api.identity.createUser({
        email: `created-${n}@matrix.test`,
        displayName: `created ${n}`,
        platformAdmin: false,
        organizationId: target === "global" ? "" : orgOf(target),
        role: target === "global" ? MembershipRole.MEMBERSHIP_ROLE_UNSPECIFIED : MEMBER,
      }),
    ),
    GetUser: async (cell) => {
      const id = await userFor(cell);
      return (api) => api.identity.getUser({ id });
    },
    ListUsers: plain((api, { target }) =>
      api.identity.listUsers({
        organizationId: target === "global" ? "" : orgOf(target),
        ...page,
      }),
    ),
    UpdateUser: async (cell) => {
      const id = await userFor(cell);
      return (api) => api.identity.updateUser({ id, displayName: `renamed ${cell.n}` });
    },
    DeleteUser: async (cell) => {
      const id = await userFor(cell);
      return (api) => api.identity.deleteUser({ id });
    },
    SetMembership: async (cell) => {
      const userId = await userFor({ ...cell, target: "global" });
      const organizationId = orgOf(cell.target);
      return (api) => api.identity.setMembership({ userId, organizationId, role: MEMBER });
    },
    RemoveMembership: async (cell) => {
      const userId = await userFor(cell);
      const organizationId = orgOf(cell.target);
      return (api) => api.identity.removeMembership({ userId, organizationId });
    },
    ListMemberships: async ({ target, caller }) =>
      target === "self"
        ? (api) => api.identity.listMemberships({ organizationId: "", userId: caller.userId() })
        : (api) => api.identity.listMemberships({ organizationId: orgOf(target), userId: "" }),
    CreateApiKey: async (cell) => {
      const userId = await userFor(cell);
      return (api) =>
        api.identity.createApiKey({ userId, name: `key ${cell.n}`, expiresAt: undefined });
    },
    ListApiKeys: async (cell) => {
      const userId = await userFor(cell);
      return (api) => api.identity.listApiKeys({ userId });
    },
    RevokeApiKey: async (cell) => {
      const userId = await userFor(cell);
      const created = await root.identity.createApiKey({
        userId,
        name: `to revoke ${cell.n}`,
        expiresAt: undefined,
      });
      const id = required(created.apiKey).id;
      return (api) => api.identity.revokeApiKey({ id });
    },
  },
  ModuleService: {
    PutModule: plain((api, { target, n }) =>
      api.modules.putModule({ scope: scopeOf(target), path: `matrix/put-${n}.ts`, content: "" }),
    ),
    GetModule: async (cell) => {
      const path = await moduleIn(cell);
      return (api) => api.modules.getModule({ scope: scopeOf(cell.target), path });
    },
    ResolveModule: async (cell) => {
      const path = await moduleIn(cell);
      return (api) => api.modules.resolveModule({ organizationId: orgOf(cell.target), path });
    },
    DeleteModule: async (cell) => {
      const path = await moduleIn(cell);
      return (api) => api.modules.deleteModule({ scope: scopeOf(cell.target), path });
    },
    ListModules: plain((api, { target }) =>
      api.modules.listModules({ scope: scopeOf(target), pathPrefix: "", ...page }),
    ),
    ListEffectiveModules: plain((api, { target }) =>
      api.modules.listEffectiveModules({
        organizationId: orgOf(target),
        pathPrefix: "",
        ...page,
      }),
    ),
    GetEffectiveView: plain((api, { target }) =>
      api.modules.getEffectiveView({ organizationId: orgOf(target), knownFingerprint: "" }),
    ),
    GetImportMap: plain((api, { target }) =>
      api.modules.getImportMap({ organizationId: orgOf(target) }),
    ),
  },
  ConfigService: {
    SetConfig: plain((api, { target, n }) =>
      api.config.setConfig({
        scope: scopeOf(target),
        key: `matrix.set-${n}`,
        value: { kind: { $case: "intValue", value: String(n) } },
        description: "",
      }),
    ),
    GetConfig: async (cell) => {
      const key = await configIn(cell);
      return (api) => api.config.getConfig({ scope: scopeOf(cell.target), key });
    },
    ResolveConfig: async (cell) => {
      const key = await configIn(cell);
      const organizationId = orgOf(cell.target);
      return (api) => api.config.resolveConfig({ organizationId, key, defaultValue: undefined });
    },
    DeleteConfig: async (cell) => {
      const key = await configIn(cell);
      return (api) => api.config.deleteConfig({ scope: scopeOf(cell.target), key });
    },
    ListConfig: plain((api, { target }) => api.config.listConfig({ scope: scopeOf(target) })),
    ListEffectiveConfig: plain((api, { target }) =>
      api.config.listEffectiveConfig({ organizationId: orgOf(target) }),
    ),
  },
  SecretService: {
    SetSecret: plain((api, { target, n }) =>
      api.secrets.setSecret({
        scope: scopeOf(target),
        name: `matrix_set_${n}`,
        value: "v",
        description: "",
      }),
    ),
    DeleteSecret: async (cell) => {
      const name = await secretIn(cell);
      return (api) => api.secrets.deleteSecret({ scope: scopeOf(cell.target), name });
    },
    ListSecrets: plain((api, { target }) => api.secrets.listSecrets({ scope: scopeOf(target) })),
    ListEffectiveSecrets: plain((api, { target }) =>
      api.secrets.listEffectiveSecrets({ organizationId: orgOf(target) }),
    ),
  },
  WorkflowService: {
    ListWorkflows: plain((api, { target }) =>
      api.workflows.listWorkflows({ scope: scopeOf(target) }),
    ),
    ListEffectiveWorkflows: plain((api, { target }) =>
      api.workflows.listEffectiveWorkflows({ organizationId: orgOf(target) }),
    ),
    GetWorkflow: plain((api, { target }) =>
      api.workflows.getWorkflow({ organizationId: orgOf(target), name: "no_such_workflow" }),
    ),
  },
  ExecutionService: {
    StartExecution: plain((api, { target }) =>
      api.executions.startExecution({
        organizationId: orgOf(target),
        workflow: "no_such_workflow",
        params: {},
        waitForResult: false,
        waitTimeoutSeconds: 0,
      }),
    ),
    // A random id: in the own and foreign columns alike, nobody can tell it from a foreign one.
    GetExecution: plain((api) => api.executions.getExecution({ id: randomUUID() })),
    ListExecutions: plain((api, { target }) =>
      api.executions.listExecutions({
        organizationId: orgOf(target),
        workflow: "",
        status: 0,
        kind: 0,
        ...page,
      }),
    ),
    CancelExecution: plain((api) => api.executions.cancelExecution({ id: randomUUID() })),
    WatchExecution: plain((api) => api.watchExecution({ id: randomUUID() })),
    GetDataProviderOptions: plain((api, { target }) =>
      api.executions.getDataProviderOptions({
        organizationId: orgOf(target),
        dataProvider: "no_such_provider",
        inputs: {},
        noCache: false,
        timeoutSeconds: 0,
      }),
    ),
  },
  RunnerService: {
    ClaimExecution: plain((_api, { caller }) =>
      runnerClient(caller).claimExecution({
        executionId: randomUUID(),
        attempt: 1,
        runnerName: "matrix",
      }),
    ),
    GetExecutionView: plain((_api, { caller }) =>
      runnerClient(caller).getExecutionView({ executionToken: "t" }),
    ),
    GetExecutionModules: plain((_api, { caller }) =>
      runnerClient(caller).getExecutionModules({ executionToken: "t", contentHashes: [] }),
    ),
    ExecutionCall: plain((_api, { caller }) =>
      runnerClient(caller).executionCall({
        executionToken: "t",
        method: "config.get",
        name: "k",
        value: undefined,
      }),
    ),
    ReportExecutionEvents: plain((_api, { caller }) =>
      runnerClient(caller).reportExecutionEvents({
        executionToken: "t",
        logs: [],
        checkpoints: [],
      }),
    ),
    RunnerHeartbeat: plain((_api, { caller }) =>
      runnerClient(caller).runnerHeartbeat({
        runnerName: "matrix",
        capacity: 1,
        inFlight: 0,
        version: "",
      }),
    ),
    ListRunners: plain((_api, { caller }) => runnerClient(caller).listRunners({})),
    CompleteExecution: plain((_api, { caller }) =>
      runnerClient(caller).completeExecution({
        executionToken: "t",
        status: 3,
        result: undefined,
        error: undefined,
        executionId: "",
      }),
    ),
  },
  GitBindingService: {
    BindRepository: async (cell) => {
      const scope = await freeGitScope(cell);
      return (api) =>
        api.git.bindRepository({
          scope,
          repositoryUrl: `https://git.example.test/matrix/repo-${cell.n}.git`,
          branch: "main",
          subfolder: "",
          credential: undefined,
          pollIntervalSeconds: 0,
        });
    },
    GetGitBinding: async (cell) => {
      const id = await bindingIn(cell);
      return (api) => api.git.getGitBinding({ id });
    },
    ListGitBindings: plain((api, { target }) =>
      api.git.listGitBindings({ scope: scopeOf(target) }),
    ),
    UpdateGitBinding: async (cell) => {
      const id = await bindingIn(cell);
      return (api) =>
        api.git.updateGitBinding({
          id,
          branch: "release",
          credential: undefined,
          clearCredential: false,
          rotateWebhookSecret: true,
        });
    },
    UnbindRepository: async (cell) => {
      const id = await bindingIn(cell);
      return (api) => api.git.unbindRepository({ id });
    },
    SyncGitBinding: async (cell) => {
      const id = await bindingIn(cell);
      return (api) => api.git.syncGitBinding({ id });
    },
    ListGitSyncs: async (cell) => {
      const id = await bindingIn(cell);
      return (api) => api.git.listGitSyncs({ bindingId: id, ...page });
    },
    GetGitSync: async (cell) => {
      const id = await bindingIn(cell);
      const { sync } = await root.git.syncGitBinding({ id });
      return (api) => api.git.getGitSync({ id: required(sync).id });
    },
  },
  AuditService: {
    ListAuditEvents: plain((api, { target }) =>
      api.audit.listAuditEvents({
        organizationId: target === "global" ? "" : orgOf(target),
        globalOnly: target === "global",
        action: "",
        ...page,
      }),
    ),
  },
};

const targetPhrase: Record<Target, string> = {
  own: "its own org",
  foreign: "a foreign org",
  global: "the global scope",
  self: "itself",
};
const userTargetPhrase: Record<Target, string> = {
  own: "a user of its own org",
  foreign: "a user of a foreign org",
  global: "a user of no org",
  self: "itself",
};
const targets: Target[] = ["own", "foreign", "global", "self"];

const cells = (Object.keys(matrix) as Service[]).flatMap((service) =>
  Object.entries(matrix[service] as Record<string, Row>).flatMap(([rpc, row]) =>
    targets.flatMap((target) => {
      const expected = row[target];
      if (expected === undefined || "notApplicable" in expected) return [];
      return callers.map((caller) => {
        const code = caller.column === undefined ? status.UNAUTHENTICATED : expected[caller.column];
        const on = (row.targetsUsers ? userTargetPhrase : targetPhrase)[target];
        const title = `${rpc} by ${caller.name} on ${on} is ${status[code]}`;
        return [title, { service, rpc, target, caller, expected: status[code] }] as const;
      });
    }),
  ),
);

let counter = 0;

/** The status name a call ends with ("OK" when it succeeds) and the server's detail message. */
async function outcomeOf(call: Promise<unknown>): Promise<{ code: string; details: string }> {
  try {
    await call;
    return { code: "OK", details: "" };
  } catch (error) {
    const code = (error as Partial<ServiceError>).code;
    if (typeof code !== "number") throw error;
    return { code: status[code], details: (error as ServiceError).details };
  }
}

/** "Service.Method" for every row of a per-RPC table. */
const rpcNames = (table: PerRpc<unknown>) =>
  Object.entries(table)
    .flatMap(([service, rows]) => Object.keys(rows as object).map((rpc) => `${service}.${rpc}`))
    .sort();

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  root = world.as(world.keys.platformAdmin);
  platformAdminUserId = required((await root.identity.getCurrentPrincipal({})).user).id;
});

afterAll(async () => {
  for (const client of runnerClients.values()) client.close();
  await cp?.close();
});

describe("authorization matrix", () => {
  test("has a row and a request builder for exactly the RPCs of the generated services", () => {
    const served = Object.values(definitions)
      .flatMap((definition) => Object.values(definition).map((method) => method.path))
      .map((path) => path.replace(/^\/bifrost\.v1\./, "").replace("/", "."))
      .sort();
    expect(rpcNames(matrix)).toEqual(served);
    expect(rpcNames(builders)).toEqual(served);
  });

  test.each(cells)("%s", async (_title, cell) => {
    const build = (builders[cell.service] as Record<string, Build>)[cell.rpc];
    const call = await required(build)({ target: cell.target, caller: cell.caller, n: ++counter });
    const outcome = await outcomeOf(call(world.as(cell.caller.key())));
    expect(outcome.code, outcome.details).toBe(cell.expected);
  });
});

describe("requests that would raise the caller's own privileges", () => {
  test("UpdateUser by an org admin making itself platform admin is PERMISSION_DENIED", async () => {
    const admin = world.as(world.keys.adminA);
    const outcome = await outcomeOf(
      admin.identity.updateUser({ id: world.users.adminA, platformAdmin: true }),
    );
    expect(outcome.code).toBe("PERMISSION_DENIED");
    const me = await admin.identity.getCurrentPrincipal({});
    expect(me.user?.platformAdmin).toBe(false);
  });

  test("CreateUser by an org admin of a platform admin in its own org is PERMISSION_DENIED", async () => {
    const outcome = await outcomeOf(
      world.as(world.keys.adminA).identity.createUser({
        email: "escalate@matrix.test",
        displayName: "escalate",
        platformAdmin: true,
        organizationId: world.orgA.id,
        role: ADMIN,
      }),
    );
    expect(outcome.code).toBe("PERMISSION_DENIED");
  });

  test("SetMembership by an org member making itself admin of its own org is PERMISSION_DENIED", async () => {
    const member = world.as(world.keys.memberA);
    const outcome = await outcomeOf(
      member.identity.setMembership({
        userId: world.users.memberA,
        organizationId: world.orgA.id,
        role: ADMIN,
      }),
    );
    expect(outcome.code).toBe("PERMISSION_DENIED");
    const me = await member.identity.getCurrentPrincipal({});
    const inOrgA = me.memberships.find((m) => m.organizationId === world.orgA.id);
    expect(inOrgA?.role).toBe(MEMBER);
  });
});
