import { Provenance } from "@bifrost/proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";

// This file owns Redis database 15, so it can flush the whole database without disturbing
// other test files (which use database 0 with their own key prefixes).
const redisDb = 15;

let cp: TestControlPlane;
let world: TenancyWorld;

beforeAll(async () => {
  cp = await startTestControlPlane({ redisDb });
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  await root.modules.putModule({
    scope: globalScope,
    path: "shared/halopsa.ts",
    content: "global",
  });
  await root.modules.putModule({
    scope: orgScope(world.orgA.id),
    path: "shared/halopsa.ts",
    content: "A",
  });
  await root.modules.putModule({
    scope: orgScope(world.orgB.id),
    path: "shared/halopsa.ts",
    content: "B",
  });
});

afterAll(async () => {
  await cp?.close();
});

const resolveAll = async () => {
  const root = world.as(world.keys.platformAdmin);
  const out: Record<string, [string | undefined, Provenance | undefined]> = {};
  for (const [label, org] of [
    ["A", world.orgA],
    ["B", world.orgB],
    ["C", world.orgC],
  ] as const) {
    const r = await root.modules.resolveModule({
      organizationId: org.id,
      path: "shared/halopsa.ts",
    });
    out[label] = [r.module?.content, r.provenance];
  }
  return out;
};

const expected = {
  A: ["A", Provenance.PROVENANCE_OVERRIDE],
  B: ["B", Provenance.PROVENANCE_OVERRIDE],
  C: ["global", Provenance.PROVENANCE_GLOBAL],
};

test("after the cache is flushed, resolution rebuilds it from Postgres with each organization isolated", async () => {
  expect(await resolveAll()).toEqual(expected);
  await cp.redis.flushdb();
  expect(await cp.redis.dbsize()).toBe(0);
  expect(await resolveAll()).toEqual(expected);
  // The cache was refilled (not bypassed): resolving again is served from it.
  expect((await cp.redis.keys(`${cp.redisPrefix}module:*`)).length).toBeGreaterThanOrEqual(4);
  await cp.sql`update modules set content = 'changed behind the cache' where path = 'shared/halopsa.ts'`;
  expect(await resolveAll()).toEqual(expected);
  await cp.sql`update modules set content = case when organization_id is null then 'global'
    when organization_id = ${world.orgA.id} then 'A' else 'B' end where path = 'shared/halopsa.ts'`;
});

test("warming at start fills the cache from Postgres", async () => {
  await cp.redis.flushdb();
  const warmed = await cp.stores.modules.warmCache();
  expect(warmed).toBe(3);
  const keys = (await cp.redis.keys(`${cp.redisPrefix}*`)).sort();
  expect(keys.filter((k) => k.includes(":module:"))).toEqual(
    [
      `${cp.redisPrefix}module:${world.orgA.id}:shared/halopsa.ts`,
      `${cp.redisPrefix}module:${world.orgB.id}:shared/halopsa.ts`,
      `${cp.redisPrefix}module:global:shared/halopsa.ts`,
    ].sort(),
  );
  expect(await resolveAll()).toEqual(expected);
});

test("a write while the cache is empty is still seen by the next read", async () => {
  await cp.redis.flushdb();
  await world.as(world.keys.adminA).modules.putModule({
    scope: orgScope(world.orgA.id),
    path: "shared/halopsa.ts",
    content: "A2",
  });
  const r = await world
    .as(world.keys.adminA)
    .modules.resolveModule({ organizationId: world.orgA.id, path: "shared/halopsa.ts" });
  expect(r.module?.content).toBe("A2");
});
