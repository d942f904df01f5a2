import { MembershipRole } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bootstrapPlatformAdmin } from "../identity/bootstrap.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { codeOf, orgScope } from "../testing/wire.js";

let cp: TestControlPlane;
let world: TenancyWorld;

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
});

afterAll(async () => {
  await cp?.close();
});

describe("organizations", () => {
  test("members list only their own organizations; platform admins list all, paginated", async () => {
    const mine = await world
      .as(world.keys.memberA)
      .organizations.listOrganizations({ pageSize: 0, pageToken: "" });
    expect(mine.organizations?.map((o) => o.name)).toEqual(["Org A"]);
    const root = world.as(world.keys.platformAdmin);
    const first = await root.organizations.listOrganizations({ pageSize: 2, pageToken: "" });
    expect(first.organizations?.map((o) => o.name)).toEqual(["Org A", "Org B"]);
    const second = await root.organizations.listOrganizations({
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    expect(second.organizations?.map((o) => o.name)).toContain("Org C");
  });

  test("renaming and deactivating: members of an inactive organization are refused with FAILED_PRECONDITION", async () => {
    const root = world.as(world.keys.platformAdmin);
    const { organization } = await root.organizations.createOrganization({ name: "Short Lived" });
    const id = organization?.id as string;
    const { user } = await root.identity.createUser({
      email: "temp@short.test",
      displayName: "",
      platformAdmin: false,
      organizationId: id,
      role: MembershipRole.MEMBERSHIP_ROLE_ADMIN,
    });
    const { secret } = await root.identity.createApiKey({
      userId: user?.id as string,
      name: "k",
      expiresAt: undefined,
    });
    const renamed = await root.organizations.updateOrganization({
      id,
      name: "Renamed",
      active: false,
    });
    expect(renamed.organization).toMatchObject({ name: "Renamed", active: false });
    expect(
      await codeOf(
        world
          .as(secret)
          .modules.listModules({ scope: orgScope(id), pathPrefix: "", pageSize: 0, pageToken: "" }),
      ),
    ).toBe("FAILED_PRECONDITION");
    await root.organizations.updateOrganization({ id, active: true });
    expect(
      await codeOf(
        world
          .as(secret)
          .modules.listModules({ scope: orgScope(id), pathPrefix: "", pageSize: 0, pageToken: "" }),
      ),
    ).toBe("OK");
  });

  test("deleting an organization that owns modules, config or secrets is refused unless forced", async () => {
    const root = world.as(world.keys.platformAdmin);
    const { organization } = await root.organizations.createOrganization({ name: "Doomed" });
    const id = organization?.id as string;
    await root.modules.putModule({ scope: orgScope(id), path: "shared/x.ts", content: "x" });
    await root.config.setConfig({
      scope: orgScope(id),
      key: "k",
      value: { kind: { $case: "boolValue", value: true } },
      description: "",
    });
    await root.secrets.setSecret({ scope: orgScope(id), name: "s", value: "v", description: "" });
    const refused = await root.organizations
      .deleteOrganization({ id, force: false })
      .catch((e) => e);
    expect(status[refused.code]).toBe("FAILED_PRECONDITION");
    expect(refused.details).toContain("1 modules, 1 config entries and 1 secrets");
    expect((await root.organizations.getOrganization({ id })).organization?.id).toBe(id);

    await root.modules.resolveModule({ organizationId: id, path: "shared/x.ts" }); // cache it
    expect((await cp.redis.keys(`${cp.redisPrefix}module:${id}:*`)).length).toBe(1);
    const { removed } = await root.organizations.deleteOrganization({ id, force: true });
    expect(await cp.redis.keys(`${cp.redisPrefix}module:${id}:*`)).toEqual([]);
    expect(removed).toEqual({ modules: "1", configEntries: "1", secrets: "1", memberships: "0" });
    expect(await codeOf(root.organizations.getOrganization({ id }))).toBe("NOT_FOUND");
    const leftovers = await cp.sql`
      select (select count(*) from modules where organization_id = ${id})::int
        + (select count(*) from config_entries where organization_id = ${id})::int
        + (select count(*) from secrets where organization_id = ${id})::int
        + (select count(*) from module_scope_states where organization_id = ${id})::int as n`;
    expect(leftovers[0]?.n).toBe(0);
    // Its history survives it.
    const audit = await root.audit.listAuditEvents({
      organizationId: id,
      globalOnly: false,
      action: "",
      pageSize: 0,
      pageToken: "",
    });
    expect(audit.events?.map((e) => e.action)).toContain("organization.delete");
  });

  test("organization names are unique regardless of case", async () => {
    const root = world.as(world.keys.platformAdmin);
    expect(await codeOf(root.organizations.createOrganization({ name: "org a" }))).toBe(
      "ALREADY_EXISTS",
    );
  });
});

describe("identity and API keys", () => {
  test("GetCurrentPrincipal describes the caller and their memberships", async () => {
    const me = await world.as(world.keys.adminA).identity.getCurrentPrincipal({});
    expect(me.user?.email).toBe("admin@a.test");
    expect(me.memberships?.map((m) => [m.organizationId, m.role])).toEqual([
      [world.orgA.id, MembershipRole.MEMBERSHIP_ROLE_ADMIN],
    ]);
  });

  test("a key's secret is shown once and only its hash is stored", async () => {
    const a = world.as(world.keys.adminA);
    const { apiKey, secret } = await a.identity.createApiKey({
      userId: "",
      name: "laptop",
      expiresAt: undefined,
    });
    expect(secret).toMatch(/^bfk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(secret.startsWith(apiKey?.prefix as string)).toBe(true);
    const listed = await a.identity.listApiKeys({ userId: "" });
    expect(JSON.stringify(listed)).not.toContain(secret.slice(22));
    const rows = await cp.sql<
      { secret_hash: Buffer }[]
    >`select secret_hash from api_keys where id = ${apiKey?.id as string}`;
    expect(rows[0]?.secret_hash.length).toBe(32);
    expect(rows[0]?.secret_hash.includes(Buffer.from(secret))).toBe(false);
  });

  test("a revoked key is UNAUTHENTICATED at once and says so", async () => {
    const a = world.as(world.keys.adminA);
    const { apiKey, secret } = await a.identity.createApiKey({
      userId: "",
      name: "short",
      expiresAt: undefined,
    });
    expect(await codeOf(world.as(secret).identity.getCurrentPrincipal({}))).toBe("OK");
    await a.identity.revokeApiKey({ id: apiKey?.id as string });
    const error = await world
      .as(secret)
      .identity.getCurrentPrincipal({})
      .catch((e) => e);
    expect(status[error.code]).toBe("UNAUTHENTICATED");
    expect(error.details).toContain("revoked");
  });

  test("an expired key is UNAUTHENTICATED", async () => {
    const root = world.as(world.keys.platformAdmin);
    const { apiKey, secret } = await root.identity.createApiKey({
      userId: world.users.memberA,
      name: "expiring",
      expiresAt: new Date(Date.now() + 60_000),
    });
    await cp.sql`update api_keys set expires_at = now() - interval '1 second' where id = ${apiKey?.id as string}`;
    const error = await world
      .as(secret)
      .identity.getCurrentPrincipal({})
      .catch((e) => e);
    expect(status[error.code]).toBe("UNAUTHENTICATED");
    expect(error.details).toContain("expired");
  });

  test("missing, malformed and unknown keys are UNAUTHENTICATED, distinct from PERMISSION_DENIED", async () => {
    expect(await codeOf(world.as(undefined).identity.getCurrentPrincipal({}))).toBe(
      "UNAUTHENTICATED",
    );
    expect(await codeOf(world.as("not-a-key").identity.getCurrentPrincipal({}))).toBe(
      "UNAUTHENTICATED",
    );
    expect(
      await codeOf(
        world.as(`bfk_0000000000000000_${"A".repeat(43)}`).identity.getCurrentPrincipal({}),
      ),
    ).toBe("UNAUTHENTICATED");
    const tampered = `${world.keys.adminA.slice(0, -1)}${world.keys.adminA.endsWith("A") ? "B" : "A"}`;
    expect(await codeOf(world.as(tampered).identity.getCurrentPrincipal({}))).toBe(
      "UNAUTHENTICATED",
    );
    expect(
      await codeOf(world.as(world.keys.memberA).organizations.createOrganization({ name: "Nope" })),
    ).toBe("PERMISSION_DENIED");
  });

  test("users cannot issue keys for others, and org admins cannot mint platform admins", async () => {
    const a = world.as(world.keys.adminA);
    expect(
      await codeOf(
        a.identity.createApiKey({ userId: world.users.memberA, name: "x", expiresAt: undefined }),
      ),
    ).toBe("PERMISSION_DENIED");
    expect(
      await codeOf(
        a.identity.createUser({
          email: "sneaky@a.test",
          displayName: "",
          platformAdmin: true,
          organizationId: world.orgA.id,
          role: MembershipRole.MEMBERSHIP_ROLE_ADMIN,
        }),
      ),
    ).toBe("PERMISSION_DENIED");
    const created = await a.identity.createUser({
      email: "new@a.test",
      displayName: "New",
      platformAdmin: false,
      organizationId: world.orgA.id,
      role: MembershipRole.MEMBERSHIP_ROLE_MEMBER,
    });
    expect(created.user?.platformAdmin).toBe(false);
  });

  test("the last platform admin cannot be demoted or deleted", async () => {
    const root = world.as(world.keys.platformAdmin);
    const me = await root.identity.getCurrentPrincipal({});
    expect(
      await codeOf(root.identity.updateUser({ id: me.user?.id as string, platformAdmin: false })),
    ).toBe("FAILED_PRECONDITION");
    expect(await codeOf(root.identity.deleteUser({ id: me.user?.id as string }))).toBe(
      "FAILED_PRECONDITION",
    );
  });

  test("bootstrap creates the first platform admin once, and only once", async () => {
    const again = await bootstrapPlatformAdmin(cp.sql, cp.stores.identity, {
      email: "other@test.local",
      presetKey: undefined,
    });
    expect(again.created).toBe(false);
    const admins = await cp.sql`select email from users where platform_admin`;
    expect(admins.map((r) => r.email)).toEqual(["admin@test.local"]);
  });

  test("removing a membership takes the organization away from the user's key immediately", async () => {
    const root = world.as(world.keys.platformAdmin);
    const { user } = await root.identity.createUser({
      email: "leaver@b.test",
      displayName: "",
      platformAdmin: false,
      organizationId: world.orgB.id,
      role: MembershipRole.MEMBERSHIP_ROLE_ADMIN,
    });
    const { secret } = await root.identity.createApiKey({
      userId: user?.id as string,
      name: "k",
      expiresAt: undefined,
    });
    const list = () => world.as(secret).config.listConfig({ scope: orgScope(world.orgB.id) });
    expect(await codeOf(list())).toBe("OK");
    await world
      .as(world.keys.adminB)
      .identity.removeMembership({ userId: user?.id as string, organizationId: world.orgB.id });
    expect(await codeOf(list())).toBe("PERMISSION_DENIED");
  });
});

describe("audit log", () => {
  test("every mutation is recorded with actor, organization, action and target", async () => {
    const a = world.as(world.keys.adminA);
    await a.modules.putModule({
      scope: orgScope(world.orgA.id),
      path: "shared/audited.ts",
      content: "1",
    });
    await a.modules.deleteModule({ scope: orgScope(world.orgA.id), path: "shared/audited.ts" });
    const { events } = await a.audit.listAuditEvents({
      organizationId: world.orgA.id,
      globalOnly: false,
      action: "",
      pageSize: 0,
      pageToken: "",
    });
    const recent = events
      ?.filter((e) => e.target === "shared/audited.ts")
      .map((e) => [e.action, e.actorUserId]);
    expect(recent).toEqual([
      ["module.delete", world.users.adminA],
      ["module.create", world.users.adminA],
    ]);
  });

  test("org admins see only their organization's events; org-wide and global listings are for platform admins", async () => {
    const a = world.as(world.keys.adminA);
    const { events } = await a.audit.listAuditEvents({
      organizationId: world.orgA.id,
      globalOnly: false,
      action: "",
      pageSize: 500,
      pageToken: "",
    });
    expect(events?.every((e) => e.organizationId === world.orgA.id)).toBe(true);
    expect(
      await codeOf(
        a.audit.listAuditEvents({
          organizationId: world.orgB.id,
          globalOnly: false,
          action: "",
          pageSize: 0,
          pageToken: "",
        }),
      ),
    ).toBe("PERMISSION_DENIED");
    expect(
      await codeOf(
        a.audit.listAuditEvents({
          organizationId: "",
          globalOnly: true,
          action: "",
          pageSize: 0,
          pageToken: "",
        }),
      ),
    ).toBe("PERMISSION_DENIED");
    expect(
      await codeOf(
        world.as(world.keys.memberA).audit.listAuditEvents({
          organizationId: world.orgA.id,
          globalOnly: false,
          action: "",
          pageSize: 0,
          pageToken: "",
        }),
      ),
    ).toBe("PERMISSION_DENIED");
  });

  test("pagination walks every event exactly once, newest first", async () => {
    const root = world.as(world.keys.platformAdmin);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await root.audit.listAuditEvents({
        organizationId: "",
        globalOnly: false,
        action: "",
        pageSize: 7,
        pageToken,
      });
      seen.push(...(page.events ?? []).map((e) => e.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    const [{ n }] = (await cp.sql`select count(*)::int as n from audit_events`) as unknown as [
      { n: number },
    ];
    expect(seen.length).toBe(n);
    expect(new Set(seen).size).toBe(n);
  });

  test("pagination keeps events that are microseconds apart, across page boundaries", async () => {
    const root = world.as(world.keys.platformAdmin);
    // Audit rows outlive organizations, so an id with no organization row is a fine filter.
    const orgId = "00000000-0000-4000-8000-00000000abcd";
    for (const micros of ["000100", "000200", "000300", "000900"]) {
      await cp.sql`insert into audit_events (organization_id, action, target_type, target, created_at)
        values (${orgId}, 'test.tick', 'tick', ${micros}, ${`2030-01-01 00:00:00.${micros}+00`}::text::timestamptz)`;
    }
    const targets: string[] = [];
    let pageToken = "";
    do {
      const page = await root.audit.listAuditEvents({
        organizationId: orgId,
        globalOnly: false,
        action: "",
        pageSize: 1,
        pageToken,
      });
      targets.push(...(page.events ?? []).map((e) => e.target));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(targets).toEqual(["000900", "000300", "000200", "000100"]);
  });
});
