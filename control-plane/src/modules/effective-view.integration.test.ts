import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Actor, systemActor } from "../audit/audit-log.js";
import { createLogger } from "../log.js";
import { globalScope, organizationScope } from "../scope.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createModuleCache } from "./module-cache.js";
import { createModuleStore, type ModuleStore } from "./module-store.js";

// The view rebuild keeps the global rows of the last view, keyed by the global view sum.
// These tests check that what it returns is always what the database holds: across global
// writes, for provenance the fingerprint does not capture, and between two replicas that each
// keep their own copy.

let cp: TestControlPlane;
let replica: ModuleStore;
let orgA: string;
let orgB: string;
const actor: Actor = systemActor;

beforeAll(async () => {
  cp = await startTestControlPlane();
  // A second control plane process over the same database and cache.
  replica = createModuleStore({
    sql: cp.sql,
    cache: createModuleCache(cp.redis, { prefix: cp.redisPrefix, ttlSeconds: 60 }),
    log: createLogger({ name: "test", level: "silent" }),
    maxModuleBytes: 1024,
  });
  orgA = (await cp.stores.organizations.create(actor, "View A")).id;
  orgB = (await cp.stores.organizations.create(actor, "View B")).id;
  const modules = cp.stores.modules;
  await modules.put(actor, globalScope, "shared/a.ts", "global a");
  await modules.put(actor, globalScope, "shared/b.ts", "global b");
  await modules.put(actor, organizationScope(orgA), "shared/a.ts", "org A a");
});

afterAll(async () => {
  await cp?.close();
});

const entriesOf = async (store: ModuleStore, organizationId: string) =>
  Object.fromEntries(
    ((await store.effectiveView(organizationId)).entries ?? []).map((e) => [
      e.path,
      [e.contentHash.slice(0, 8), e.provenance],
    ]),
  );

const listed = async (store: ModuleStore, organizationId: string) =>
  Object.fromEntries(
    (await store.listEffective(organizationId, { prefix: "", after: "", limit: 1000 })).map((r) => [
      r.module.path,
      [r.module.contentHash.slice(0, 8), r.provenance],
    ]),
  );

describe("the effective view", () => {
  test("returns what the effective listing returns, in path order", async () => {
    const view = await cp.stores.modules.effectiveView(orgA);
    expect(await entriesOf(cp.stores.modules, orgA)).toEqual(await listed(cp.stores.modules, orgA));
    const paths = (view.entries ?? []).map((e) => e.path);
    expect(paths).toEqual([...paths].sort());
  });

  test("a global write is seen by the next rebuild of every organization", async () => {
    await cp.stores.modules.effectiveView(orgB);
    await cp.stores.modules.put(actor, globalScope, "shared/c.ts", "global c");
    await cp.stores.modules.put(actor, globalScope, "shared/b.ts", "global b, edited");
    for (const org of [orgA, orgB]) {
      expect(await entriesOf(cp.stores.modules, org)).toEqual(await listed(cp.stores.modules, org));
    }
    expect(Object.keys(await entriesOf(cp.stores.modules, orgB))).toContain("shared/c.ts");
  });

  test("a global module added under an org-only path keeps the fingerprint and turns the provenance to override", async () => {
    const modules = cp.stores.modules;
    await modules.put(actor, organizationScope(orgA), "shared/mine.ts", "org A only");
    const before = await modules.effectiveView(orgA);
    expect((await entriesOf(modules, orgA))["shared/mine.ts"]?.[1]).toBe("organization");
    await modules.put(actor, globalScope, "shared/mine.ts", "now global too");
    const after = await modules.effectiveView(orgA);
    expect(after.fingerprint).toBe(before.fingerprint);
    expect((await entriesOf(modules, orgA))["shared/mine.ts"]?.[1]).toBe("override");
  });

  test("with the fingerprint the caller knows: no entries while it holds, the new view once anything changed", async () => {
    const modules = cp.stores.modules;
    const current = await modules.effectiveView(orgB);
    expect(await modules.effectiveView(orgB, current.fingerprint)).toEqual({
      fingerprint: current.fingerprint,
      entries: undefined,
    });
    // An org write and a global write each change it; another org's write does not.
    await modules.put(actor, organizationScope(orgA), "shared/only-a.ts", "org A only");
    expect((await modules.effectiveView(orgB, current.fingerprint)).entries).toBeUndefined();
    await modules.put(actor, organizationScope(orgB), "shared/only-b.ts", "org B only");
    const afterOwn = await modules.effectiveView(orgB, current.fingerprint);
    expect(afterOwn.fingerprint).not.toBe(current.fingerprint);
    expect((afterOwn.entries ?? []).map((e) => e.path)).toContain("shared/only-b.ts");
    await modules.put(actor, globalScope, "shared/e.ts", "global e");
    const afterGlobal = await modules.effectiveView(orgB, afterOwn.fingerprint);
    expect((afterGlobal.entries ?? []).map((e) => e.path)).toContain("shared/e.ts");
    // An id that names no organization is NOT_FOUND, known fingerprint or not.
    await expect(
      modules.effectiveView("00000000-0000-4000-8000-000000000000", current.fingerprint),
    ).rejects.toThrow(/organization "00000000-0000-4000-8000-000000000000" not found/);
  });

  test("two replicas each keeping global rows agree after either one writes", async () => {
    await replica.effectiveView(orgA);
    await cp.stores.modules.effectiveView(orgA);
    await cp.stores.modules.put(actor, globalScope, "shared/d.ts", "written by the first");
    expect(await entriesOf(replica, orgA)).toEqual(await entriesOf(cp.stores.modules, orgA));
    expect(Object.keys(await entriesOf(replica, orgA))).toContain("shared/d.ts");
    await replica.delete(actor, globalScope, "shared/d.ts");
    expect(await entriesOf(cp.stores.modules, orgA)).toEqual(await entriesOf(replica, orgA));
    expect(Object.keys(await entriesOf(cp.stores.modules, orgA))).not.toContain("shared/d.ts");
    expect(await entriesOf(replica, orgA)).toEqual(await listed(replica, orgA));
  });
});
