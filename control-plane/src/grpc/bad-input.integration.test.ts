import { MembershipRole, type Scope } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  maxModulePathDepth,
  maxModulePathLength,
  maxModuleSegmentLength,
} from "../modules/module-path.js";
import { contentHashOf } from "../modules/view-hash.js";
import type { ApiClients } from "../testing/grpc-clients.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { expectCode, globalScope, orgScope } from "../testing/wire.js";
import { encodePageToken } from "./pagination.js";

// Bad input on every RPC that takes it: the right status, a message naming the value, and
// nothing half-written in PostgreSQL or the Redis cache afterwards.

const moduleMaxBytes = 1024;
/** Well-formed, but no organization, user or key has it. */
const unknownId = "0b6a3f1e-4c2d-4e8f-9a7b-1c2d3e4f5a6b";
const malformedUuids = [
  "not-a-uuid",
  "0b6a3f1e-4c2d-4e8f-9a7b-1c2d3e4f5a6g",
  "0b6a3f1e4c2d4e8f9a7b1c2d3e4f5a6b",
  "{0b6a3f1e-4c2d-4e8f-9a7b-1c2d3e4f5a6b}",
];
const member = MembershipRole.MEMBERSHIP_ROLE_MEMBER;

let cp: TestControlPlane;
let world: TenancyWorld;
let root: ApiClients;

beforeAll(async () => {
  cp = await startTestControlPlane({ moduleMaxBytes });
  world = await createTenancyWorld(cp);
  root = cp.api(cp.adminKey);
  // Global rows an unknown organization would inherit if the cascade did not check it exists.
  await root.modules.putModule({ scope: globalScope, path: "shared/x.ts", content: "global" });
  await root.config.setConfig({
    scope: globalScope,
    key: "region",
    value: { kind: { $case: "stringValue", value: "eu" } },
    description: "",
  });
  await root.secrets.setSecret({ scope: globalScope, name: "token", value: "t", description: "" });
});

afterAll(async () => {
  await cp?.close();
});

const trackedTables = [
  "organizations",
  "users",
  "memberships",
  "modules",
  "module_scope_states",
  "config_entries",
  "secrets",
  "audit_events",
] as const;

/** Row count and a digest of every row of each table, and every cache key with its value. */
async function snapshot() {
  const tables: Record<string, { rows: number; digest: string }> = {};
  for (const table of trackedTables) {
    const [row] = await cp.sql<{ rows: number; digest: string }[]>`
      select count(*)::int as rows, md5(coalesce(string_agg(t::text, E'\n' order by t::text), '')) as digest
      from ${cp.sql(table)} t`;
    tables[table] = row as { rows: number; digest: string };
  }
  // last_used_at changes on authentication, off the request's path: leave it out.
  const [keys] = await cp.sql<{ rows: number; digest: string }[]>`
    select count(*)::int as rows,
      md5(coalesce(string_agg(concat_ws(',', id, name, expires_at, revoked_at), E'\n' order by id), '')) as digest
    from api_keys`;
  tables.api_keys = keys as { rows: number; digest: string };
  const redisKeys = (await cp.redis.keys(`${cp.redisPrefix}*`)).sort();
  const values = redisKeys.length ? await cp.redis.mget(...redisKeys) : [];
  return { tables, redis: Object.fromEntries(redisKeys.map((k, i) => [k, values[i]])) };
}

/** Expects the call to fail with `code` and to leave every table and cache key as it was. */
async function rejects(call: () => Promise<unknown>, code: status): Promise<string> {
  const before = await snapshot();
  const details = await expectCode(call(), code);
  expect(await snapshot()).toEqual(before);
  return details;
}

/** Module cache pointers of any scope for exactly this path. */
async function cacheKeysForPath(path: string): Promise<string[]> {
  const keys = await cp.redis.keys(`${cp.redisPrefix}module:*`);
  return keys.filter((key) => key.endsWith(`:${path}`));
}

describe("module paths", () => {
  const longPath = `shared/${"a".repeat(maxModulePathLength)}.ts`;
  const deepPath = `${"a/".repeat(maxModulePathDepth)}x.ts`;
  const longSegment = `shared/${"a".repeat(maxModuleSegmentLength + 1)}.ts`;
  const cases = [
    { rule: "that is empty", path: "", says: "path is required" },
    { rule: "longer than the limit", path: longPath, says: `at most ${maxModulePathLength} are` },
    { rule: "with a NUL character", path: "shared/a\u0000.ts", says: "NUL or control characters" },
    { rule: "with a tab", path: "shared/a\tb.ts", says: "NUL or control characters" },
    { rule: "with a DEL character", path: "shared/a\u007f.ts", says: "NUL or control characters" },
    { rule: "with a backslash", path: "shared\\a.ts", says: "must not contain backslashes" },
    { rule: "that is absolute", path: "/x.ts", says: "must be relative to the workspace" },
    { rule: "with a drive letter", path: "C:x.ts", says: "must be relative to the workspace" },
    { rule: "with a drive root", path: "C:/x.ts", says: "must be relative to the workspace" },
    { rule: "with a '..' segment", path: "shared/../x.ts", says: 'must not contain ".."' },
    { rule: "starting with '..'", path: "../x.ts", says: 'must not contain ".."' },
    { rule: "with a '.' segment", path: "shared/./x.ts", says: 'must not contain "." segments' },
    { rule: "starting with './'", path: "./x.ts", says: 'must not contain "." segments' },
    { rule: "with an empty segment", path: "a//b.ts", says: "must not have empty segments" },
    { rule: "with a trailing '/'", path: "shared/", says: "must not have empty segments" },
    { rule: "deeper than the limit", path: deepPath, says: `at most ${maxModulePathDepth} are` },
    { rule: "with an over-long segment", path: longSegment, says: `${maxModuleSegmentLength} are` },
    { rule: "with a space", path: "shared/my module.ts", says: "may only use letters" },
    { rule: "with a non-ASCII letter", path: "shared/ü.ts", says: "may only use letters" },
    { rule: "with a colon", path: "shared/a:b.ts", says: "may only use letters" },
    { rule: "with a shell character", path: "shared/$(id).ts", says: "may only use letters" },
    { rule: "with a leading-dot segment", path: "shared/.hidden.ts", says: 'not start with "."' },
    { rule: "under a leading-dot folder", path: ".git/hooks.ts", says: 'not start with "."' },
    { rule: "with an unknown extension", path: "shared/a.py", says: "must end in one of .ts" },
    { rule: "without an extension", path: "shared/README", says: "must end in one of .ts" },
  ];
  const quoted = (path: string) =>
    path.length > maxModulePathLength
      ? JSON.stringify(`${path.slice(0, 40)}…`)
      : JSON.stringify(path);

  test.each(cases)(
    "PutModule rejects a path $rule, naming it, and writes nothing",
    async ({ path, says }) => {
      const details = await rejects(
        () => root.modules.putModule({ scope: globalScope, path, content: "export {};" }),
        status.INVALID_ARGUMENT,
      );
      expect(details).toContain(says);
      if (path !== "") expect(details).toContain(`path ${quoted(path)}`);
      expect(await cacheKeysForPath(path)).toEqual([]);
    },
  );

  test("PutModule into an organization rejects a bad path before looking at the organization", async () => {
    for (const scope of [orgScope(world.orgA.id), orgScope(unknownId)]) {
      const details = await rejects(
        () => root.modules.putModule({ scope, path: "../escape.ts", content: "x" }),
        status.INVALID_ARGUMENT,
      );
      expect(details).toContain('path "../escape.ts" must not contain ".."');
    }
  });

  test.each(["../x.ts", "/etc/passwd.ts", "shared/a b.ts", "shared\\x.ts", "shared/x"])(
    "GetModule, ResolveModule and DeleteModule reject the path %j, naming it",
    async (path) => {
      const calls = [
        () => root.modules.getModule({ scope: globalScope, path }),
        () => root.modules.getModule({ scope: orgScope(world.orgA.id), path }),
        () => root.modules.resolveModule({ organizationId: world.orgA.id, path }),
        () => root.modules.deleteModule({ scope: globalScope, path }),
        () => root.modules.deleteModule({ scope: orgScope(world.orgA.id), path }),
      ];
      for (const call of calls) {
        const details = await rejects(call, status.INVALID_ARGUMENT);
        expect(details).toContain(`path ${JSON.stringify(path)}`);
      }
      expect(await cacheKeysForPath(path)).toEqual([]);
    },
  );

  test.each(["/shared", "shared/../x", "shared/a b", "ü"])(
    "ListModules and ListEffectiveModules reject the path_prefix %j, naming it",
    async (prefix) => {
      const calls = [
        () =>
          root.modules.listModules({
            scope: globalScope,
            pathPrefix: prefix,
            pageSize: 0,
            pageToken: "",
          }),
        () =>
          root.modules.listEffectiveModules({
            organizationId: world.orgA.id,
            pathPrefix: prefix,
            pageSize: 0,
            pageToken: "",
          }),
      ];
      for (const call of calls) {
        const details = await rejects(call, status.INVALID_ARGUMENT);
        expect(details).toContain(`path_prefix ${JSON.stringify(prefix)}`);
      }
    },
  );

  test("a path at every limit is accepted, so the limits are exactly where they say", async () => {
    const atLimits = [
      `${"a/".repeat(maxModulePathDepth - 1)}x.ts`,
      `shared/${"a".repeat(maxModuleSegmentLength - 3)}.ts`,
      `${`${"a".repeat(100)}/`.repeat(4)}${"b".repeat(maxModulePathLength - 404 - 3)}.ts`,
    ];
    expect(atLimits.map((p) => p.length)).toContain(maxModulePathLength);
    for (const path of atLimits) {
      const { changed } = await root.modules.putModule({ scope: globalScope, path, content: path });
      expect(changed).toBe(true);
      await root.modules.deleteModule({ scope: globalScope, path });
    }
  });
});

describe("module size", () => {
  test("a module one byte over the limit is RESOURCE_EXHAUSTED naming the path and the limit", async () => {
    const content = "x".repeat(moduleMaxBytes + 1);
    const details = await rejects(
      () => root.modules.putModule({ scope: globalScope, path: "shared/big.ts", content }),
      status.RESOURCE_EXHAUSTED,
    );
    expect(details).toContain('module "shared/big.ts"');
    expect(details).toContain(`is ${moduleMaxBytes + 1} bytes`);
    expect(details).toContain(`at most ${moduleMaxBytes} bytes`);
    expect(await cacheKeysForPath("shared/big.ts")).toEqual([]);
    expect(await cp.redis.exists(`${cp.redisPrefix}blob:${contentHashOf(content)}`)).toBe(0);
  });

  test("the limit counts UTF-8 bytes, not characters", async () => {
    const content = "ü".repeat(moduleMaxBytes / 2 + 1);
    expect(content.length).toBeLessThan(moduleMaxBytes);
    const details = await rejects(
      () =>
        root.modules.putModule({ scope: orgScope(world.orgA.id), path: "shared/u.ts", content }),
      status.RESOURCE_EXHAUSTED,
    );
    expect(details).toContain(`module "shared/u.ts" is ${moduleMaxBytes + 2} bytes`);
  });

  test("an oversized replacement leaves the module, its view sums and its cache entry as they were", async () => {
    const scope = orgScope(world.orgB.id);
    await root.modules.putModule({ scope, path: "shared/keep.ts", content: "small" });
    await root.modules.resolveModule({ organizationId: world.orgB.id, path: "shared/keep.ts" });
    await rejects(
      () =>
        root.modules.putModule({
          scope,
          path: "shared/keep.ts",
          content: "y".repeat(moduleMaxBytes + 1),
        }),
      status.RESOURCE_EXHAUSTED,
    );
    const { module } = await root.modules.getModule({ scope, path: "shared/keep.ts" });
    expect(module?.content).toBe("small");
  });

  test("a module exactly at the limit is accepted", async () => {
    const content = "z".repeat(moduleMaxBytes);
    const { module } = await root.modules.putModule({
      scope: globalScope,
      path: "shared/edge.ts",
      content,
    });
    expect(module?.sizeBytes).toBe(String(moduleMaxBytes));
  });
});

describe("scopes", () => {
  type ScopedCall = (api: ApiClients, scope: Scope | undefined) => Promise<unknown>;
  const scoped: Array<[string, ScopedCall]> = [
    [
      "PutModule",
      (api, scope) => api.modules.putModule({ scope, path: "shared/s.ts", content: "" }),
    ],
    ["GetModule", (api, scope) => api.modules.getModule({ scope, path: "shared/s.ts" })],
    ["DeleteModule", (api, scope) => api.modules.deleteModule({ scope, path: "shared/s.ts" })],
    [
      "ListModules",
      (api, scope) =>
        api.modules.listModules({ scope, pathPrefix: "", pageSize: 0, pageToken: "" }),
    ],
    [
      "SetConfig",
      (api, scope) =>
        api.config.setConfig({
          scope,
          key: "k",
          value: { kind: { $case: "boolValue", value: true } },
          description: "",
        }),
    ],
    ["GetConfig", (api, scope) => api.config.getConfig({ scope, key: "k" })],
    ["DeleteConfig", (api, scope) => api.config.deleteConfig({ scope, key: "k" })],
    ["ListConfig", (api, scope) => api.config.listConfig({ scope })],
    [
      "SetSecret",
      (api, scope) => api.secrets.setSecret({ scope, name: "s", value: "v", description: "" }),
    ],
    ["DeleteSecret", (api, scope) => api.secrets.deleteSecret({ scope, name: "s" })],
    ["ListSecrets", (api, scope) => api.secrets.listSecrets({ scope })],
  ];

  test.each(scoped)("%s without a scope is INVALID_ARGUMENT", async (_rpc, call) => {
    const details = await rejects(() => call(root, undefined), status.INVALID_ARGUMENT);
    expect(details).toContain("scope is required");
  });

  test.each(scoped)("%s with global = false is INVALID_ARGUMENT", async (_rpc, call) => {
    const details = await rejects(
      () => call(root, { kind: { $case: "global", value: false } }),
      status.INVALID_ARGUMENT,
    );
    expect(details).toContain("scope.global must be true");
  });

  test.each(scoped)("%s with an empty organization_id is INVALID_ARGUMENT", async (_rpc, call) => {
    const details = await rejects(() => call(root, orgScope("")), status.INVALID_ARGUMENT);
    expect(details).toContain("scope.organization_id is required");
  });

  test.each(scoped)("%s names a malformed scope.organization_id", async (_rpc, call) => {
    for (const bad of malformedUuids) {
      const details = await rejects(() => call(root, orgScope(bad)), status.INVALID_ARGUMENT);
      expect(details).toContain(`scope.organization_id "${bad}" is not a valid UUID`);
    }
  });
});

describe("unknown organizations", () => {
  const id = unknownId;
  const cases: Array<[string, (api: ApiClients) => Promise<unknown>]> = [
    [
      "PutModule",
      (api) => api.modules.putModule({ scope: orgScope(id), path: "shared/x.ts", content: "o" }),
    ],
    ["GetModule", (api) => api.modules.getModule({ scope: orgScope(id), path: "shared/x.ts" })],
    [
      "DeleteModule",
      (api) => api.modules.deleteModule({ scope: orgScope(id), path: "shared/x.ts" }),
    ],
    [
      "ResolveModule",
      (api) => api.modules.resolveModule({ organizationId: id, path: "shared/x.ts" }),
    ],
    [
      "ListModules",
      (api) =>
        api.modules.listModules({
          scope: orgScope(id),
          pathPrefix: "",
          pageSize: 0,
          pageToken: "",
        }),
    ],
    [
      "ListEffectiveModules",
      (api) =>
        api.modules.listEffectiveModules({
          organizationId: id,
          pathPrefix: "",
          pageSize: 0,
          pageToken: "",
        }),
    ],
    [
      "GetEffectiveView",
      (api) => api.modules.getEffectiveView({ organizationId: id, knownFingerprint: "" }),
    ],
    ["GetImportMap", (api) => api.modules.getImportMap({ organizationId: id })],
    [
      "SetConfig",
      (api) =>
        api.config.setConfig({
          scope: orgScope(id),
          key: "region",
          value: { kind: { $case: "stringValue", value: "us" } },
          description: "",
        }),
    ],
    ["GetConfig", (api) => api.config.getConfig({ scope: orgScope(id), key: "region" })],
    ["DeleteConfig", (api) => api.config.deleteConfig({ scope: orgScope(id), key: "region" })],
    ["ResolveConfig", (api) => api.config.resolveConfig({ organizationId: id, key: "region" })],
    ["ListConfig", (api) => api.config.listConfig({ scope: orgScope(id) })],
    ["ListEffectiveConfig", (api) => api.config.listEffectiveConfig({ organizationId: id })],
    [
      "SetSecret",
      (api) =>
        api.secrets.setSecret({ scope: orgScope(id), name: "token", value: "v", description: "" }),
    ],
    ["DeleteSecret", (api) => api.secrets.deleteSecret({ scope: orgScope(id), name: "token" })],
    ["ListSecrets", (api) => api.secrets.listSecrets({ scope: orgScope(id) })],
    ["ListEffectiveSecrets", (api) => api.secrets.listEffectiveSecrets({ organizationId: id })],
    ["GetOrganization", (api) => api.organizations.getOrganization({ id })],
    ["UpdateOrganization", (api) => api.organizations.updateOrganization({ id, name: "Renamed" })],
    ["DeleteOrganization", (api) => api.organizations.deleteOrganization({ id, force: false })],
    [
      "DeleteOrganization with force",
      (api) => api.organizations.deleteOrganization({ id, force: true }),
    ],
    [
      "SetMembership",
      (api) =>
        api.identity.setMembership({
          userId: world.users.memberA,
          organizationId: id,
          role: member,
        }),
    ],
    [
      "RemoveMembership",
      (api) => api.identity.removeMembership({ userId: world.users.memberA, organizationId: id }),
    ],
    [
      "CreateUser with organization_id",
      (api) =>
        api.identity.createUser({
          email: "orphan@nowhere.test",
          displayName: "Orphan",
          platformAdmin: false,
          organizationId: id,
          role: member,
        }),
    ],
  ];

  test.each(cases)(
    "%s as platform admin is NOT_FOUND naming the organization id",
    async (_rpc, call) => {
      const details = await rejects(() => call(root), status.NOT_FOUND);
      expect(details).toContain(`organization "${id}"`);
    },
  );

  test("a global module or config value is not resolved for an organization that does not exist", async () => {
    // The global rows exist, so only an existence check can tell the caller the id is wrong.
    await expectCode(
      root.modules.resolveModule({ organizationId: id, path: "shared/x.ts" }),
      status.NOT_FOUND,
    );
    await expectCode(
      root.config.resolveConfig({ organizationId: id, key: "region" }),
      status.NOT_FOUND,
    );
    expect((await cp.redis.keys(`${cp.redisPrefix}*`)).filter((k) => k.includes(id))).toEqual([]);
  });

  test("CreateUser with an initial membership in an unknown organization leaves no user behind", async () => {
    await rejects(
      () =>
        root.identity.createUser({
          email: "half@written.test",
          displayName: "",
          platformAdmin: false,
          organizationId: id,
          role: member,
        }),
      status.NOT_FOUND,
    );
    const rows = await cp.sql`select 1 from users where lower(email) = 'half@written.test'`;
    expect(rows).toHaveLength(0);
  });

  test("unknown users, keys and memberships are NOT_FOUND naming the id", async () => {
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => root.identity.getUser({ id }), `user "${id}"`],
      [() => root.identity.updateUser({ id, displayName: "x" }), `user "${id}"`],
      [() => root.identity.deleteUser({ id }), `user "${id}"`],
      [
        () =>
          root.identity.setMembership({ userId: id, organizationId: world.orgA.id, role: member }),
        `user "${id}"`,
      ],
      [
        () => root.identity.removeMembership({ userId: id, organizationId: world.orgA.id }),
        `user "${id}"`,
      ],
      [
        () => root.identity.createApiKey({ userId: id, name: "k", expiresAt: undefined }),
        `user "${id}"`,
      ],
      [() => root.identity.revokeApiKey({ id }), `api key "${id}"`],
    ];
    for (const [call, names] of cases) {
      expect(await rejects(call, status.NOT_FOUND)).toContain(names);
    }
  });
});

describe("malformed UUIDs", () => {
  type IdCall = (api: ApiClients, bad: string) => Promise<unknown>;
  const orgA = () => world.orgA.id;
  const userA = () => world.users.memberA;
  const cases: Array<[string, string, IdCall]> = [
    ["GetOrganization", "id", (api, bad) => api.organizations.getOrganization({ id: bad })],
    [
      "UpdateOrganization",
      "id",
      (api, bad) => api.organizations.updateOrganization({ id: bad, name: "n" }),
    ],
    [
      "DeleteOrganization",
      "id",
      (api, bad) => api.organizations.deleteOrganization({ id: bad, force: true }),
    ],
    [
      "CreateUser",
      "organization_id",
      (api, bad) =>
        api.identity.createUser({
          email: "uuid@case.test",
          displayName: "",
          platformAdmin: false,
          organizationId: bad,
          role: member,
        }),
    ],
    ["GetUser", "id", (api, bad) => api.identity.getUser({ id: bad })],
    [
      "ListUsers",
      "organization_id",
      (api, bad) => api.identity.listUsers({ organizationId: bad, pageSize: 0, pageToken: "" }),
    ],
    ["UpdateUser", "id", (api, bad) => api.identity.updateUser({ id: bad, displayName: "x" })],
    ["DeleteUser", "id", (api, bad) => api.identity.deleteUser({ id: bad })],
    [
      "SetMembership",
      "user_id",
      (api, bad) =>
        api.identity.setMembership({ userId: bad, organizationId: orgA(), role: member }),
    ],
    [
      "SetMembership",
      "organization_id",
      (api, bad) =>
        api.identity.setMembership({ userId: userA(), organizationId: bad, role: member }),
    ],
    [
      "RemoveMembership",
      "user_id",
      (api, bad) => api.identity.removeMembership({ userId: bad, organizationId: orgA() }),
    ],
    [
      "RemoveMembership",
      "organization_id",
      (api, bad) => api.identity.removeMembership({ userId: userA(), organizationId: bad }),
    ],
    [
      "ListMemberships",
      "organization_id",
      (api, bad) => api.identity.listMemberships({ organizationId: bad, userId: "" }),
    ],
    [
      "ListMemberships",
      "user_id",
      (api, bad) => api.identity.listMemberships({ organizationId: "", userId: bad }),
    ],
    [
      "CreateApiKey",
      "user_id",
      (api, bad) => api.identity.createApiKey({ userId: bad, name: "k", expiresAt: undefined }),
    ],
    ["ListApiKeys", "user_id", (api, bad) => api.identity.listApiKeys({ userId: bad })],
    ["RevokeApiKey", "id", (api, bad) => api.identity.revokeApiKey({ id: bad })],
    [
      "ResolveModule",
      "organization_id",
      (api, bad) => api.modules.resolveModule({ organizationId: bad, path: "shared/x.ts" }),
    ],
    [
      "ListEffectiveModules",
      "organization_id",
      (api, bad) =>
        api.modules.listEffectiveModules({
          organizationId: bad,
          pathPrefix: "",
          pageSize: 0,
          pageToken: "",
        }),
    ],
    [
      "GetEffectiveView",
      "organization_id",
      (api, bad) => api.modules.getEffectiveView({ organizationId: bad, knownFingerprint: "" }),
    ],
    [
      "GetImportMap",
      "organization_id",
      (api, bad) => api.modules.getImportMap({ organizationId: bad }),
    ],
    [
      "ResolveConfig",
      "organization_id",
      (api, bad) => api.config.resolveConfig({ organizationId: bad, key: "region" }),
    ],
    [
      "ListEffectiveConfig",
      "organization_id",
      (api, bad) => api.config.listEffectiveConfig({ organizationId: bad }),
    ],
    [
      "ListEffectiveSecrets",
      "organization_id",
      (api, bad) => api.secrets.listEffectiveSecrets({ organizationId: bad }),
    ],
    [
      "ListAuditEvents",
      "organization_id",
      (api, bad) =>
        api.audit.listAuditEvents({
          organizationId: bad,
          globalOnly: false,
          action: "",
          pageSize: 0,
          pageToken: "",
        }),
    ],
  ];

  test.each(cases)(
    "%s is INVALID_ARGUMENT naming a malformed %s and its value",
    async (_rpc, field, call) => {
      for (const bad of malformedUuids) {
        const details = await rejects(() => call(root, bad), status.INVALID_ARGUMENT);
        expect(details).toContain(`${field} "${bad}" is not a valid UUID`);
      }
    },
  );

  test("a required id that is empty is INVALID_ARGUMENT naming the field", async () => {
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => root.organizations.getOrganization({ id: "" }), "id is required"],
      [() => root.organizations.deleteOrganization({ id: "", force: false }), "id is required"],
      [() => root.identity.getUser({ id: "" }), "id is required"],
      [
        () =>
          root.identity.setMembership({ userId: "", organizationId: world.orgA.id, role: member }),
        "user_id is required",
      ],
      [
        () => root.modules.resolveModule({ organizationId: "", path: "shared/x.ts" }),
        "organization_id is required",
      ],
      [
        () => root.config.listEffectiveConfig({ organizationId: "" }),
        "organization_id is required",
      ],
    ];
    for (const [call, says] of cases) {
      expect(await rejects(call, status.INVALID_ARGUMENT)).toContain(says);
    }
  });
});

describe("organization names", () => {
  test.each([
    { what: "empty", name: "", says: "name is required and must not be blank" },
    { what: "blank", name: " \t ", says: "name is required and must not be blank" },
    {
      what: "too long",
      name: "n".repeat(201),
      says: `name "${"n".repeat(40)}…" is 201 characters`,
    },
    { what: "with a control character", name: "Org\u0000X", says: 'name "Org\\u0000X" must not' },
  ])("CreateOrganization rejects a name that is $what, naming it", async ({ name, says }) => {
    const details = await rejects(
      () => root.organizations.createOrganization({ name }),
      status.INVALID_ARGUMENT,
    );
    expect(details).toContain(says);
  });

  test.each(["Org A", "org a", "ORG A", "  Org A  "])(
    "CreateOrganization with the taken name %j is ALREADY_EXISTS naming it",
    async (name) => {
      const details = await rejects(
        () => root.organizations.createOrganization({ name }),
        status.ALREADY_EXISTS,
      );
      expect(details).toContain(`organization named "${name.trim()}" already exists`);
    },
  );

  test("UpdateOrganization rejects a blank or taken name and keeps the old one", async () => {
    const id = world.orgB.id;
    const blank = await rejects(
      () => root.organizations.updateOrganization({ id, name: "  " }),
      status.INVALID_ARGUMENT,
    );
    expect(blank).toContain("name is required");
    const taken = await rejects(
      () => root.organizations.updateOrganization({ id, name: "oRg a" }),
      status.ALREADY_EXISTS,
    );
    expect(taken).toContain('organization named "oRg a" already exists');
    const { organization } = await root.organizations.getOrganization({ id });
    expect(organization?.name).toBe("Org B");
  });
});

describe("users", () => {
  const createUser = (
    email: string,
    extra: { displayName?: string; organizationId?: string } = {},
  ) =>
    root.identity.createUser({
      email,
      displayName: extra.displayName ?? "",
      platformAdmin: false,
      organizationId: extra.organizationId ?? "",
      role: member,
    });

  test.each([
    { what: "empty", email: "", says: "email is required" },
    { what: "blank", email: "   ", says: "email is required" },
    { what: "without an @", email: "not-an-email", says: 'email "not-an-email" is not a valid' },
    { what: "with nothing before the @", email: "@a.test", says: 'email "@a.test" is not a valid' },
    { what: "with two @", email: "a@@b.test", says: 'email "a@@b.test" is not a valid' },
    { what: "with a space", email: "a b@c.test", says: 'email "a b@c.test" is not a valid' },
    { what: "too long", email: `${"a".repeat(250)}@b.test`, says: `email "${"a".repeat(80)}"` },
    { what: "with a NUL character", email: "nul\u0000@a.test", says: "nul\\u0000@a.test" },
    { what: "with a control character", email: "bell\u0007@a.test", says: "bell\\u0007@a.test" },
  ])("CreateUser rejects an email that is $what, naming it", async ({ email, says }) => {
    const details = await rejects(() => createUser(email), status.INVALID_ARGUMENT);
    expect(details).toContain(says);
  });

  test.each(["admin@a.test", "ADMIN@A.TEST", " admin@a.test "])(
    "CreateUser with the taken email %j is ALREADY_EXISTS and adds no membership",
    async (email) => {
      const details = await rejects(
        () => createUser(email, { organizationId: world.orgB.id }),
        status.ALREADY_EXISTS,
      );
      expect(details).toContain(`a user with email "${email.trim()}" already exists`);
    },
  );

  test("CreateUser and UpdateUser reject a display name with control characters or too long", async () => {
    const control = await rejects(
      () => createUser("ok@a.test", { displayName: "a\u0000b" }),
      status.INVALID_ARGUMENT,
    );
    expect(control).toContain('display_name "a\\u0000b" must not contain control characters');
    const long = await rejects(
      () => root.identity.updateUser({ id: world.users.memberA, displayName: "d".repeat(201) }),
      status.INVALID_ARGUMENT,
    );
    expect(long).toContain("display_name is 201 characters; at most 200 are allowed");
  });

  test("CreateUser and SetMembership reject an unspecified or unknown role, naming it", async () => {
    const unspecified = await rejects(
      () =>
        root.identity.createUser({
          email: "role@a.test",
          displayName: "",
          platformAdmin: false,
          organizationId: world.orgA.id,
          role: MembershipRole.MEMBERSHIP_ROLE_UNSPECIFIED,
        }),
      status.INVALID_ARGUMENT,
    );
    expect(unspecified).toContain("role 0 must be");
    const unknown = await rejects(
      () =>
        root.identity.setMembership({
          userId: world.users.memberA,
          organizationId: world.orgA.id,
          role: 7 as MembershipRole,
        }),
      status.INVALID_ARGUMENT,
    );
    expect(unknown).toContain("role 7 must be");
  });

  test("ListMemberships needs exactly one of organization_id and user_id", async () => {
    const both = await rejects(
      () =>
        root.identity.listMemberships({
          organizationId: world.orgA.id,
          userId: world.users.adminA,
        }),
      status.INVALID_ARGUMENT,
    );
    expect(both).toContain("set only one of organization_id and user_id");
    const neither = await rejects(
      () => root.identity.listMemberships({ organizationId: "", userId: "" }),
      status.INVALID_ARGUMENT,
    );
    expect(neither).toContain("one of organization_id and user_id is required");
  });
});

describe("api keys", () => {
  test.each([
    { what: "empty", name: "", says: "name is required and must not be blank" },
    { what: "blank", name: " \t", says: "name is required and must not be blank" },
    { what: "too long", name: "k".repeat(101), says: "name is 101 characters; at most 100" },
    { what: "with a control character", name: "k\u0000", says: 'name "k\\u0000" must not' },
  ])("CreateApiKey rejects a name that is $what", async ({ name, says }) => {
    const details = await rejects(
      () => root.identity.createApiKey({ userId: world.users.memberA, name, expiresAt: undefined }),
      status.INVALID_ARGUMENT,
    );
    expect(details).toContain(says);
  });

  test("CreateApiKey rejects an expiry in the past, naming it", async () => {
    for (const expiresAt of [new Date(Date.now() - 60_000), new Date(0)]) {
      const details = await rejects(
        () => root.identity.createApiKey({ userId: world.users.memberA, name: "old", expiresAt }),
        status.INVALID_ARGUMENT,
      );
      expect(details).toContain(`expires_at ${expiresAt.toISOString()} must be in the future`);
    }
  });
});

describe("config keys and values", () => {
  const set = (key: string, value?: Parameters<ApiClients["config"]["setConfig"]>[0]["value"]) =>
    root.config.setConfig({ scope: orgScope(world.orgA.id), key, value, description: "" });
  const str = (value: string) => ({ kind: { $case: "stringValue" as const, value } });

  test.each([
    "1starts-with-digit",
    "_underscore",
    "has space",
    "a/b",
    "ü",
    "a\u0000b",
    "k".repeat(201),
  ])(
    "SetConfig, GetConfig, ResolveConfig and DeleteConfig reject the key %j, naming it",
    async (key) => {
      const quoted = JSON.stringify(key.slice(0, 80));
      const calls = [
        () => set(key, str("v")),
        () => root.config.getConfig({ scope: globalScope, key }),
        () => root.config.resolveConfig({ organizationId: world.orgA.id, key }),
        () => root.config.deleteConfig({ scope: globalScope, key }),
      ];
      for (const call of calls) {
        expect(await rejects(call, status.INVALID_ARGUMENT)).toContain(
          `key ${quoted} must start with a letter`,
        );
      }
    },
  );

  test("SetConfig with an empty key is INVALID_ARGUMENT", async () => {
    expect(await rejects(() => set("", str("v")), status.INVALID_ARGUMENT)).toContain(
      "key is required",
    );
  });

  test("SetConfig without a value is INVALID_ARGUMENT listing the value kinds", async () => {
    for (const value of [undefined, { kind: undefined }]) {
      const details = await rejects(() => set("k", value), status.INVALID_ARGUMENT);
      expect(details).toContain("value is required: set one of string_value, int_value");
    }
  });

  test("SetConfig rejects JSON that does not parse, naming it", async () => {
    for (const json of ["{not json", "", "[1,", "undefined"]) {
      const details = await rejects(
        () => set("k", { kind: { $case: "jsonValue", value: json } }),
        status.INVALID_ARGUMENT,
      );
      expect(details).toContain(`value.json_value ${JSON.stringify(json)} is not valid JSON`);
    }
  });

  test("SetConfig rejects a secret_ref that is not a valid secret name, naming it", async () => {
    const details = await rejects(
      () => set("k", { kind: { $case: "secretRef", value: "9lives" } }),
      status.INVALID_ARGUMENT,
    );
    expect(details).toContain('value.secret_ref "9lives" must start with a letter');
  });

  test("SetConfig rejects string and JSON values over 64 KiB", async () => {
    const big = "s".repeat(64 * 1024 + 1);
    expect(await rejects(() => set("k", str(big)), status.INVALID_ARGUMENT)).toContain(
      "value.string_value is larger than 65536 bytes",
    );
    const json = JSON.stringify(big);
    expect(
      await rejects(
        () => set("k", { kind: { $case: "jsonValue", value: json } }),
        status.INVALID_ARGUMENT,
      ),
    ).toContain("value.json_value is larger than 65536 bytes");
  });

  test("SetConfig rejects values PostgreSQL cannot store instead of failing internally", async () => {
    const cases = [
      str("nul\u0000inside"),
      { kind: { $case: "jsonValue" as const, value: '{"a":"\\u0000"}' } },
    ];
    for (const value of cases) {
      const details = await rejects(() => set("k", value), status.INVALID_ARGUMENT);
      expect(details).toContain("NUL");
    }
    const description = await rejects(
      () =>
        root.config.setConfig({
          scope: globalScope,
          key: "k",
          value: str("v"),
          description: "nul\u0000",
        }),
      status.INVALID_ARGUMENT,
    );
    expect(description).toContain("description");
  });

  test("ResolveConfig rejects a default_value that does not parse, naming the field", async () => {
    const details = await rejects(
      () =>
        root.config.resolveConfig({
          organizationId: world.orgA.id,
          key: "missing",
          defaultValue: { kind: { $case: "jsonValue", value: "{" } },
        }),
      status.INVALID_ARGUMENT,
    );
    expect(details).toContain('default_value.json_value "{" is not valid JSON');
  });

  test("setting an existing key twice updates the one row instead of adding a duplicate", async () => {
    await set("dup", str("one"));
    await set("dup", str("two"));
    const rows =
      await cp.sql`select value from config_entries where organization_id = ${world.orgA.id} and key = 'dup'`;
    expect(rows.map((r) => r.value)).toEqual(["two"]);
  });
});

describe("secret names and values", () => {
  const set = (name: string, value = "v", description = "") =>
    root.secrets.setSecret({ scope: orgScope(world.orgA.id), name, value, description });

  test.each(["1password", "with space", "a/b", "ü", "s".repeat(201)])(
    "SetSecret and DeleteSecret reject the name %j, naming it",
    async (name) => {
      const quoted = JSON.stringify(name.slice(0, 80));
      for (const call of [
        () => set(name),
        () => root.secrets.deleteSecret({ scope: globalScope, name }),
      ]) {
        expect(await rejects(call, status.INVALID_ARGUMENT)).toContain(
          `name ${quoted} must start with a letter`,
        );
      }
    },
  );

  test("SetSecret with an empty name is INVALID_ARGUMENT", async () => {
    expect(await rejects(() => set(""), status.INVALID_ARGUMENT)).toContain("name is required");
  });

  test("SetSecret rejects a value over 64 KiB, naming the secret", async () => {
    const details = await rejects(
      () => set("big", "v".repeat(64 * 1024 + 1)),
      status.INVALID_ARGUMENT,
    );
    expect(details).toContain('secret "big" value is larger than 65536 bytes');
  });

  test("SetSecret rejects a description PostgreSQL cannot store instead of failing internally", async () => {
    const details = await rejects(() => set("desc", "v", "nul\u0000"), status.INVALID_ARGUMENT);
    expect(details).toContain("description");
  });

  test("setting an existing secret twice re-seals the one row instead of adding a duplicate", async () => {
    await set("dup", "one");
    await set("dup", "two");
    const rows =
      await cp.sql`select 1 from secrets where organization_id = ${world.orgA.id} and name = 'dup'`;
    expect(rows).toHaveLength(1);
  });
});

describe("module content", () => {
  test("PutModule rejects content PostgreSQL cannot store instead of failing internally", async () => {
    const details = await rejects(
      () =>
        root.modules.putModule({ scope: globalScope, path: "shared/nul.ts", content: "a\u0000b" }),
      status.INVALID_ARGUMENT,
    );
    expect(details).toContain('module "shared/nul.ts"');
    expect(await cacheKeysForPath("shared/nul.ts")).toEqual([]);
  });
});

describe("pagination", () => {
  type PagedCall = (api: ApiClients, pageSize: number, pageToken: string) => Promise<unknown>;
  const paged: Array<[string, number, PagedCall]> = [
    [
      "ListOrganizations",
      500,
      (api, pageSize, pageToken) => api.organizations.listOrganizations({ pageSize, pageToken }),
    ],
    [
      "ListUsers",
      500,
      (api, pageSize, pageToken) =>
        api.identity.listUsers({ organizationId: "", pageSize, pageToken }),
    ],
    [
      "ListModules",
      1000,
      (api, pageSize, pageToken) =>
        api.modules.listModules({ scope: globalScope, pathPrefix: "", pageSize, pageToken }),
    ],
    [
      "ListEffectiveModules",
      1000,
      (api, pageSize, pageToken) =>
        api.modules.listEffectiveModules({
          organizationId: world.orgA.id,
          pathPrefix: "",
          pageSize,
          pageToken,
        }),
    ],
    [
      "ListAuditEvents",
      500,
      (api, pageSize, pageToken) =>
        api.audit.listAuditEvents({
          organizationId: "",
          globalOnly: false,
          action: "",
          pageSize,
          pageToken,
        }),
    ],
  ];

  const pagedCall = (rpc: string): PagedCall => {
    const found = paged.find(([name]) => name === rpc);
    if (!found) throw new Error(`no paged rpc ${rpc}`);
    return found[2];
  };

  test.each(paged)(
    "%s rejects a negative page_size and one above its maximum of %i",
    async (_rpc, max, call) => {
      expect(await rejects(() => call(root, -1, ""), status.INVALID_ARGUMENT)).toContain(
        "page_size -1 must not be negative",
      );
      expect(await rejects(() => call(root, max + 1, ""), status.INVALID_ARGUMENT)).toContain(
        `page_size ${max + 1} is too large; at most ${max} is allowed`,
      );
      await call(root, max, "");
    },
  );

  test.each(paged)(
    "%s rejects a page token it did not issue, naming it",
    async (_rpc, _max, call) => {
      const tokens = [
        "garbage!",
        "%%%",
        Buffer.from("{not json").toString("base64url"),
        encodePageToken(42),
        encodePageToken({ after: "x" }),
        encodePageToken(["a", "b", "c"]),
        encodePageToken(null),
      ];
      for (const token of tokens) {
        const details = await rejects(() => call(root, 0, token), status.INVALID_ARGUMENT);
        expect(details).toContain(
          `page_token "${token.slice(0, 40)}" is not a token returned by this listing`,
        );
      }
    },
  );

  test("a token of the right shape whose position no listing could have issued is INVALID_ARGUMENT", async () => {
    const cases: Array<[PagedCall, unknown]> = [
      [pagedCall("ListOrganizations"), ["org", "not-a-uuid"]],
      [pagedCall("ListOrganizations"), ["org\u0000", unknownId]],
      [pagedCall("ListUsers"), "not-a-uuid"],
      [pagedCall("ListModules"), "shared/nul\u0000.ts"],
      [pagedCall("ListEffectiveModules"), "shared/nul\u0000.ts"],
      [pagedCall("ListAuditEvents"), ["yesterday", unknownId]],
      [pagedCall("ListAuditEvents"), ["2026-02-30 10:00:00+00", unknownId]],
      [pagedCall("ListAuditEvents"), ["2026-01-02 03:04:05.123456+00", "not-a-uuid"]],
    ];
    for (const [call, position] of cases) {
      const token = encodePageToken(position);
      const details = await rejects(() => call(root, 0, token), status.INVALID_ARGUMENT);
      expect(details).toContain(`page_token "${token.slice(0, 40)}"`);
    }
  });

  test("a page token issued by a listing is accepted by the same listing", async () => {
    for (const [, , call] of paged) {
      const first = (await call(root, 1, "")) as { nextPageToken: string };
      expect(first.nextPageToken).not.toBe("");
      await call(root, 1, first.nextPageToken);
    }
  });

  test("ListAuditEvents rejects both organization_id and global_only, and an action PostgreSQL cannot store", async () => {
    const both = await rejects(
      () =>
        root.audit.listAuditEvents({
          organizationId: world.orgA.id,
          globalOnly: true,
          action: "",
          pageSize: 0,
          pageToken: "",
        }),
      status.INVALID_ARGUMENT,
    );
    expect(both).toContain("set only one of organization_id and global_only");
    const action = await rejects(
      () =>
        root.audit.listAuditEvents({
          organizationId: "",
          globalOnly: false,
          action: "module.\u0000",
          pageSize: 0,
          pageToken: "",
        }),
      status.INVALID_ARGUMENT,
    );
    expect(action).toContain("action");
  });
});

describe("credentials", () => {
  test("a malformed, unknown or missing api key is UNAUTHENTICATED and writes nothing", async () => {
    const keys = [
      undefined,
      "",
      "not-a-key",
      `bfk_${"0".repeat(16)}_${"A".repeat(43)}`,
      `${cp.adminKey}x`,
    ];
    for (const key of keys) {
      await rejects(
        () => cp.api(key).organizations.createOrganization({ name: "Sneaky" }),
        status.UNAUTHENTICATED,
      );
    }
  });
});
