import { MembershipRole } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Sql } from "../db/postgres.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { expectCode } from "../testing/wire.js";
import { createIdentityStore, type IdentityStore, keyCheckMemoryMs } from "./identity-store.js";
import type { Principal } from "./principal.js";

// Key checks are remembered. These tests hold that memory to the database: a change made
// through the test control plane (one replica), or by SQL behind every replica's back, is seen
// by another replica that follows changes long before its memory would have run out, and by
// the replica that made it at once.

let cp: TestControlPlane;
let world: TenancyWorld;
/** A second replica's identity store, following changes, with its own pool. */
let other: { store: IdentityStore; sql: Sql; statements: () => number; close(): Promise<void> };
/** A third that does not follow changes. */
let plain: typeof other;

async function replica(follow: boolean): Promise<typeof other> {
  let statements = 0;
  const sql = postgres(cp.databaseUrl, {
    max: 2,
    onnotice: () => {},
    transform: { undefined: null },
    debug: () => statements++,
  }) as unknown as Sql;
  const store = createIdentityStore(sql);
  const following = follow ? await store.followChanges() : undefined;
  return {
    store,
    sql,
    statements: () => statements,
    async close() {
      await following?.close();
      await sql.end({ timeout: 1 });
    },
  };
}

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  other = await replica(true);
  plain = await replica(false);
});

afterAll(async () => {
  await other?.close();
  await plain?.close();
  await cp?.close();
});

const bearer = (key: string) => `Bearer ${key}`;

/**
 * Checks `key` on `store` until `until` holds of the principal (or of the refusal, as
 * undefined), and returns how long that took. Fails after half the memory's lifetime: only
 * the database's announcement can explain a change seen that soon.
 */
async function seenWithin(
  store: IdentityStore,
  key: string,
  until: (principal: Principal | undefined) => boolean,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    const principal = await store.authenticate(bearer(key)).catch(() => undefined);
    if (until(principal)) return Date.now() - started;
    if (Date.now() - started > keyCheckMemoryMs / 2) {
      throw new Error(`the change was not seen within ${keyCheckMemoryMs / 2} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("remembered key checks", () => {
  test("a replica that follows changes checks a key once; one that does not, every time", async () => {
    // The first check of each reads the key (and records its use).
    await other.store.authenticate(bearer(world.keys.adminB));
    await plain.store.authenticate(bearer(world.keys.adminB));

    const before = other.statements();
    for (let i = 0; i < 3; i++) await other.store.authenticate(bearer(world.keys.adminB));
    expect(other.statements() - before).toBe(0);

    const plainBefore = plain.statements();
    for (let i = 0; i < 3; i++) await plain.store.authenticate(bearer(world.keys.adminB));
    expect(plain.statements() - plainBefore).toBe(3);
  });

  test("a key's last use being recorded forgets nothing", async () => {
    await other.store.authenticate(bearer(world.keys.adminB));
    await cp.sql`update api_keys set last_used_at = now()`;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = other.statements();
    await other.store.authenticate(bearer(world.keys.adminB));
    expect(other.statements() - before).toBe(0);
  });

  test("a membership removed and restored through another replica is seen by this one; org B's admin is untouched", async () => {
    const root = world.as(world.keys.platformAdmin);
    const inA = (p: Principal | undefined) => p?.memberships.has(world.orgA.id) === true;
    expect(inA(await other.store.authenticate(bearer(world.keys.memberA)))).toBe(true);
    const adminB = await other.store.authenticate(bearer(world.keys.adminB));

    await root.identity.removeMembership({
      userId: world.users.memberA,
      organizationId: world.orgA.id,
    });
    await seenWithin(other.store, world.keys.memberA, (p) => p !== undefined && !inA(p));
    await root.identity.setMembership({
      userId: world.users.memberA,
      organizationId: world.orgA.id,
      role: MembershipRole.MEMBERSHIP_ROLE_MEMBER,
    });
    await seenWithin(other.store, world.keys.memberA, inA);

    const adminBAfter = await other.store.authenticate(bearer(world.keys.adminB));
    expect(adminBAfter.memberships).toEqual(adminB.memberships);
    expect(adminBAfter.memberships.has(world.orgA.id)).toBe(false);
  });

  test("an organization deactivated and reactivated through another replica is seen by this one", async () => {
    const root = world.as(world.keys.platformAdmin);
    const activeA = (p: Principal | undefined) => p?.memberships.get(world.orgA.id)?.active;
    expect(activeA(await other.store.authenticate(bearer(world.keys.adminA)))).toBe(true);
    await root.organizations.updateOrganization({ id: world.orgA.id, active: false });
    try {
      await seenWithin(other.store, world.keys.adminA, (p) => activeA(p) === false);
    } finally {
      await root.organizations.updateOrganization({ id: world.orgA.id, active: true });
    }
    await seenWithin(other.store, world.keys.adminA, (p) => activeA(p) === true);
  });

  test("a key revoked by an operator's SQL, behind every replica's back, is refused by a replica that follows changes", async () => {
    const root = world.as(world.keys.platformAdmin);
    const { apiKey, secret } = await root.identity.createApiKey({
      userId: world.users.adminA,
      name: "revoked by sql",
      expiresAt: undefined,
    });
    await other.store.authenticate(bearer(secret));
    await cp.sql`update api_keys set revoked_at = now() where id = ${apiKey?.id as string}`;
    await seenWithin(other.store, secret, (p) => p === undefined);
  });

  test("the replica that makes a change never acts on what it remembered before it", async () => {
    const root = world.as(world.keys.platformAdmin);
    const member = world.as(world.keys.memberA);
    const list = () =>
      member.executions.listExecutions({
        organizationId: world.orgA.id,
        workflow: "",
        status: 0,
        kind: 0,
        pageSize: 1,
        pageToken: "",
      });
    await list();
    await root.identity.removeMembership({
      userId: world.users.memberA,
      organizationId: world.orgA.id,
    });
    await expectCode(list(), status.PERMISSION_DENIED);
    await root.identity.setMembership({
      userId: world.users.memberA,
      organizationId: world.orgA.id,
      role: MembershipRole.MEMBERSHIP_ROLE_MEMBER,
    });
    await list();
    await root.organizations.updateOrganization({ id: world.orgA.id, active: false });
    try {
      await expectCode(list(), status.FAILED_PRECONDITION);
    } finally {
      await root.organizations.updateOrganization({ id: world.orgA.id, active: true });
    }
    await list();

    const { apiKey, secret } = await root.identity.createApiKey({
      userId: world.users.adminB,
      name: "revoked through this replica",
      expiresAt: undefined,
    });
    const adminB = world.as(secret);
    await adminB.organizations.getOrganization({ id: world.orgB.id });
    await root.identity.revokeApiKey({ id: apiKey?.id as string });
    await expectCode(
      adminB.organizations.getOrganization({ id: world.orgB.id }),
      status.UNAUTHENTICATED,
    );
  });
});
