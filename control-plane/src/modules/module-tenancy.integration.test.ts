import { type Module, Provenance } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { expectCode, globalScope, orgScope } from "../testing/wire.js";
import { addSum, entryHash, viewFingerprint } from "./view-hash.js";

let cp: TestControlPlane;
let world: TenancyWorld;

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  await root.modules.putModule({
    scope: globalScope,
    path: "shared/halopsa.ts",
    content: "export const who = 'global';",
  });
  await root.modules.putModule({
    scope: globalScope,
    path: "shared/graph.ts",
    content: "export const graph = 'global';",
  });
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/onboard.ts",
    content: "import 'shared/halopsa.ts';",
  });
  await world.as(world.keys.adminA).modules.putModule({
    scope: orgScope(world.orgA.id),
    path: "shared/halopsa.ts",
    content: "export const who = 'org A';",
  });
  await world.as(world.keys.adminB).modules.putModule({
    scope: orgScope(world.orgB.id),
    path: "shared/halopsa.ts",
    content: "export const who = 'org B';",
  });
  await world.as(world.keys.adminB).modules.putModule({
    scope: orgScope(world.orgB.id),
    path: "shared/only-b.ts",
    content: "export const secretSauce = 'B';",
  });
});

afterAll(async () => {
  await cp?.close();
});

async function resolve(key: string, organizationId: string, path: string) {
  return world.as(key).modules.resolveModule({ organizationId, path });
}

describe("module cascade across two organizations and the global scope", () => {
  test("each organization resolves its own override of a shared path", async () => {
    const a = await resolve(world.keys.adminA, world.orgA.id, "shared/halopsa.ts");
    const b = await resolve(world.keys.adminB, world.orgB.id, "shared/halopsa.ts");
    expect(a.module?.content).toBe("export const who = 'org A';");
    expect(a.provenance).toBe(Provenance.PROVENANCE_OVERRIDE);
    expect(b.module?.content).toBe("export const who = 'org B';");
    expect(b.provenance).toBe(Provenance.PROVENANCE_OVERRIDE);
  });

  test("an organization without an override gets the global module", async () => {
    const c = await resolve(world.keys.platformAdmin, world.orgC.id, "shared/halopsa.ts");
    expect(c.module?.content).toBe("export const who = 'global';");
    expect(c.provenance).toBe(Provenance.PROVENANCE_GLOBAL);
    expect(c.module?.scope).toEqual(globalScope);
  });

  test("the effective listing says whether each module is the org's own, global, or an override", async () => {
    const listed = async (key: string, organizationId: string) =>
      Object.fromEntries(
        (
          (
            await world.as(key).modules.listEffectiveModules({
              organizationId,
              pathPrefix: "",
              pageSize: 0,
              pageToken: "",
            })
          ).modules ?? []
        ).map((m) => [m.module?.path, [m.provenance, m.module?.scope]]),
      );
    expect(await listed(world.keys.adminA, world.orgA.id)).toEqual({
      "shared/graph.ts": [Provenance.PROVENANCE_GLOBAL, globalScope],
      "shared/halopsa.ts": [Provenance.PROVENANCE_OVERRIDE, orgScope(world.orgA.id)],
      "workflows/onboard.ts": [Provenance.PROVENANCE_GLOBAL, globalScope],
    });
    expect(await listed(world.keys.adminB, world.orgB.id)).toEqual({
      "shared/graph.ts": [Provenance.PROVENANCE_GLOBAL, globalScope],
      "shared/halopsa.ts": [Provenance.PROVENANCE_OVERRIDE, orgScope(world.orgB.id)],
      "shared/only-b.ts": [Provenance.PROVENANCE_ORGANIZATION, orgScope(world.orgB.id)],
      "workflows/onboard.ts": [Provenance.PROVENANCE_GLOBAL, globalScope],
    });
  });

  test("the effective view and import map of each organization point at its own tree", async () => {
    const viewA = await world
      .as(world.keys.adminA)
      .modules.getEffectiveView({ organizationId: world.orgA.id, knownFingerprint: "" });
    const viewB = await world
      .as(world.keys.adminB)
      .modules.getEffectiveView({ organizationId: world.orgB.id, knownFingerprint: "" });
    const hashOf = (view: typeof viewA, path: string) =>
      view.entries?.find((e) => e.path === path)?.contentHash;
    const a = await resolve(world.keys.adminA, world.orgA.id, "shared/halopsa.ts");
    expect(hashOf(viewA, "shared/halopsa.ts")).toBe(a.module?.contentHash);
    expect(hashOf(viewB, "shared/halopsa.ts")).not.toBe(a.module?.contentHash);
    expect(viewA.entries?.map((e) => e.path)).not.toContain("shared/only-b.ts");
    expect(viewA.fingerprint).not.toBe(viewB.fingerprint);

    const mapA = JSON.parse(
      (await world.as(world.keys.adminA).modules.getImportMap({ organizationId: world.orgA.id }))
        .importMapJson,
    );
    const mapB = JSON.parse(
      (await world.as(world.keys.adminB).modules.getImportMap({ organizationId: world.orgB.id }))
        .importMapJson,
    );
    expect(mapA).toEqual({
      imports: {
        bifrost: "file:///sdk/mod.js",
        "shared/": "file:///workspace/shared/",
        "workflows/": "file:///workspace/workflows/",
      },
    });
    expect(mapB.imports["shared/"]).toBe("file:///workspace/shared/");
  });

  test("no organization can get, list, resolve or learn of another organization's modules", async () => {
    const a = world.as(world.keys.adminA);
    const bScope = orgScope(world.orgB.id);
    await expectCode(
      a.modules.getModule({ scope: bScope, path: "shared/only-b.ts" }),
      status.PERMISSION_DENIED,
    );
    // A path that does not exist in B answers exactly like one that does.
    const missing = await expectCode(
      a.modules.getModule({ scope: bScope, path: "shared/nope.ts" }),
      status.PERMISSION_DENIED,
    );
    const present = await expectCode(
      a.modules.getModule({ scope: bScope, path: "shared/only-b.ts" }),
      status.PERMISSION_DENIED,
    );
    expect(missing).toBe(present);
    await expectCode(
      a.modules.listModules({ scope: bScope, pathPrefix: "", pageSize: 0, pageToken: "" }),
      status.PERMISSION_DENIED,
    );
    await expectCode(
      a.modules.resolveModule({ organizationId: world.orgB.id, path: "shared/only-b.ts" }),
      status.PERMISSION_DENIED,
    );
    await expectCode(
      a.modules.listEffectiveModules({
        organizationId: world.orgB.id,
        pathPrefix: "",
        pageSize: 0,
        pageToken: "",
      }),
      status.PERMISSION_DENIED,
    );
    await expectCode(
      a.modules.getEffectiveView({ organizationId: world.orgB.id, knownFingerprint: "" }),
      status.PERMISSION_DENIED,
    );
    await expectCode(
      a.modules.getImportMap({ organizationId: world.orgB.id }),
      status.PERMISSION_DENIED,
    );
    // Resolving B's private path for A finds nothing: the cascade never reaches B's rows.
    const detail = await expectCode(
      a.modules.resolveModule({ organizationId: world.orgA.id, path: "shared/only-b.ts" }),
      status.NOT_FOUND,
    );
    expect(detail).not.toContain(world.orgB.id);
    // Writing into B's scope is refused and leaves B untouched.
    await expectCode(
      a.modules.putModule({ scope: bScope, path: "shared/only-b.ts", content: "hijack" }),
      status.PERMISSION_DENIED,
    );
    await expectCode(
      a.modules.deleteModule({ scope: bScope, path: "shared/only-b.ts" }),
      status.PERMISSION_DENIED,
    );
    const still = await resolve(world.keys.adminB, world.orgB.id, "shared/only-b.ts");
    expect(still.module?.content).toBe("export const secretSauce = 'B';");
  });

  test("deleting an override falls back to the global module", async () => {
    const c = world.as(world.keys.platformAdmin);
    await c.modules.putModule({
      scope: orgScope(world.orgC.id),
      path: "shared/graph.ts",
      content: "export const graph = 'C';",
    });
    expect(
      (await resolve(world.keys.platformAdmin, world.orgC.id, "shared/graph.ts")).module?.content,
    ).toBe("export const graph = 'C';");
    await c.modules.deleteModule({ scope: orgScope(world.orgC.id), path: "shared/graph.ts" });
    const after = await resolve(world.keys.platformAdmin, world.orgC.id, "shared/graph.ts");
    expect(after.module?.content).toBe("export const graph = 'global';");
    expect(after.provenance).toBe(Provenance.PROVENANCE_GLOBAL);
  });

  test("a put with unchanged content reports changed = false and writes nothing", async () => {
    const a = world.as(world.keys.adminA);
    const before = await cp.sql`select count(*)::int as n from audit_events`;
    const again = await a.modules.putModule({
      scope: orgScope(world.orgA.id),
      path: "shared/halopsa.ts",
      content: "export const who = 'org A';",
    });
    expect(again.changed).toBe(false);
    const after = await cp.sql`select count(*)::int as n from audit_events`;
    expect(after[0]?.n).toBe(before[0]?.n);
  });
});

describe("effective view fingerprints", () => {
  const view = (key: string, organizationId: string, knownFingerprint = "") =>
    world.as(key).modules.getEffectiveView({ organizationId, knownFingerprint });

  test("a current fingerprint is recognised without returning entries", async () => {
    const first = await view(world.keys.adminA, world.orgA.id);
    const again = await view(world.keys.adminA, world.orgA.id, first.fingerprint);
    expect(again.unchanged).toBe(true);
    expect(again.entries).toEqual([]);
    expect(again.fingerprint).toBe(first.fingerprint);
  });

  test("a change to a global module an organization overrides leaves that organization's fingerprint alone", async () => {
    const root = world.as(world.keys.platformAdmin);
    const a0 = (await view(world.keys.adminA, world.orgA.id)).fingerprint;
    const c0 = (await view(world.keys.platformAdmin, world.orgC.id)).fingerprint;
    await root.modules.putModule({
      scope: globalScope,
      path: "shared/halopsa.ts",
      content: "export const who = 'global v2';",
    });
    expect((await view(world.keys.adminA, world.orgA.id)).fingerprint).toBe(a0);
    expect((await view(world.keys.platformAdmin, world.orgC.id)).fingerprint).not.toBe(c0);
    expect(
      (await resolve(world.keys.platformAdmin, world.orgC.id, "shared/halopsa.ts")).module?.content,
    ).toBe("export const who = 'global v2';");
    expect(
      (await resolve(world.keys.adminA, world.orgA.id, "shared/halopsa.ts")).module?.content,
    ).toBe("export const who = 'org A';");
  });

  test("the fingerprint equals a recomputation from scratch after every kind of write", async () => {
    const root = world.as(world.keys.platformAdmin);
    const a = world.as(world.keys.adminA);
    const steps: Array<() => Promise<unknown>> = [
      () => root.modules.putModule({ scope: globalScope, path: "shared/new.ts", content: "g1" }),
      () =>
        a.modules.putModule({
          scope: orgScope(world.orgA.id),
          path: "shared/new.ts",
          content: "a1",
        }),
      () => root.modules.putModule({ scope: globalScope, path: "shared/new.ts", content: "g2" }),
      () => root.modules.deleteModule({ scope: globalScope, path: "shared/new.ts" }),
      () => root.modules.putModule({ scope: globalScope, path: "shared/new.ts", content: "g3" }),
      () => a.modules.deleteModule({ scope: orgScope(world.orgA.id), path: "shared/new.ts" }),
      () =>
        a.modules.putModule({
          scope: orgScope(world.orgA.id),
          path: "shared/a-only.ts",
          content: "a",
        }),
    ];
    for (const step of steps) {
      await step();
      for (const org of [world.orgA, world.orgB, world.orgC]) {
        const current = await view(world.keys.platformAdmin, org.id);
        // The incrementally kept fingerprint must equal one computed from the entries alone.
        const fromScratch = (current.entries ?? []).reduce(
          (sum, e) => addSum(sum, entryHash(e.path, e.contentHash)),
          0n,
        );
        expect(current.fingerprint).toBe(viewFingerprint(fromScratch, 0n));
      }
    }
    // Same effective set → same fingerprint, whichever scopes the rows come from.
    const d = (await root.organizations.createOrganization({ name: "Org D" })).organization
      ?.id as string;
    const e = (await root.organizations.createOrganization({ name: "Org E" })).organization
      ?.id as string;
    const globalView = await view(world.keys.platformAdmin, d);
    await root.modules.putModule({
      scope: orgScope(e),
      path: "shared/graph.ts",
      content: "export const graph = 'global';",
    });
    expect((await view(world.keys.platformAdmin, e)).fingerprint).toBe(globalView.fingerprint);
    await root.modules.putModule({
      scope: orgScope(e),
      path: "shared/graph.ts",
      content: "changed",
    });
    expect((await view(world.keys.platformAdmin, e)).fingerprint).not.toBe(globalView.fingerprint);
  });
});

describe("module cache", () => {
  const pointerKeys = async () => (await cp.redis.keys(`${cp.redisPrefix}module:*`)).sort();

  test("cache keys are qualified by scope, so equal paths of different organizations never share a key", async () => {
    await resolve(world.keys.adminA, world.orgA.id, "shared/halopsa.ts");
    await resolve(world.keys.adminB, world.orgB.id, "shared/halopsa.ts");
    const keys = await pointerKeys();
    expect(keys).toContain(`${cp.redisPrefix}module:${world.orgA.id}:shared/halopsa.ts`);
    expect(keys).toContain(`${cp.redisPrefix}module:${world.orgB.id}:shared/halopsa.ts`);
    expect(keys).toContain(`${cp.redisPrefix}module:global:shared/halopsa.ts`);
    const a = await cp.redis.get(`${cp.redisPrefix}module:${world.orgA.id}:shared/halopsa.ts`);
    const b = await cp.redis.get(`${cp.redisPrefix}module:${world.orgB.id}:shared/halopsa.ts`);
    expect(a).not.toBe(b);
  });

  test("reads after writes see the write, through a warm cache", async () => {
    const a = world.as(world.keys.adminA);
    for (let version = 1; version <= 5; version++) {
      await a.modules.putModule({
        scope: orgScope(world.orgA.id),
        path: "shared/hot.ts",
        content: `v${version}`,
      });
      expect(
        (await resolve(world.keys.adminA, world.orgA.id, "shared/hot.ts")).module?.content,
      ).toBe(`v${version}`);
    }
    await a.modules.deleteModule({ scope: orgScope(world.orgA.id), path: "shared/hot.ts" });
    await expectCode(resolve(world.keys.adminA, world.orgA.id, "shared/hot.ts"), status.NOT_FOUND);
  });

  test("a resolve is served from the cache when it is warm", async () => {
    await resolve(world.keys.adminA, world.orgA.id, "shared/graph.ts");
    // Change Postgres behind the cache's back: a cache hit must not see it.
    await cp.sql`update modules set content = 'tampered' where organization_id is null and path = 'shared/graph.ts'`;
    const hit = await resolve(world.keys.adminA, world.orgA.id, "shared/graph.ts");
    expect(hit.module?.content).toBe("export const graph = 'global';");
    await cp.sql`update modules set content = 'export const graph = ''global'';' where organization_id is null and path = 'shared/graph.ts'`;
  });

  test("a stale fill cannot overwrite a newer pointer", async () => {
    const key = `${cp.redisPrefix}module:${world.orgA.id}:shared/race.ts`;
    const cache = (await import("./module-cache.js")).createModuleCache(cp.redis, {
      prefix: cp.redisPrefix,
      ttlSeconds: 60,
    });
    const scope = { kind: "organization" as const, organizationId: world.orgA.id };
    await cache.putPointer(scope, "shared/race.ts", { revision: 10, hash: "b".repeat(64) });
    await cache.putPointer(scope, "shared/race.ts", { revision: 9, hash: "a".repeat(64) });
    await cache.putPointer(scope, "shared/race.ts", { revision: 0, hash: null });
    expect((await cp.redis.get(key))?.startsWith(`10:${"b".repeat(64)}`)).toBe(true);
  });
});

test("module content hash is the SHA-256 of the content and size is its UTF-8 byte length", async () => {
  const root = world.as(world.keys.platformAdmin);
  const { module } = await root.modules.putModule({
    scope: globalScope,
    path: "shared/unicode.ts",
    content: "export const s = 'ü';",
  });
  const { createHash } = await import("node:crypto");
  expect(module?.contentHash).toBe(
    createHash("sha256").update("export const s = 'ü';").digest("hex"),
  );
  expect((module as Module).sizeBytes).toBe("22");
});

test("the import map follows module writes at once, per organization", async () => {
  const a = world.as(world.keys.adminA);
  const map = async (key: string, organizationId: string) =>
    JSON.parse((await world.as(key).modules.getImportMap({ organizationId })).importMapJson)
      .imports as Record<string, string>;
  expect(await map(world.keys.adminA, world.orgA.id)).not.toHaveProperty("clients/");
  await a.modules.putModule({
    scope: orgScope(world.orgA.id),
    path: "clients/contoso.ts",
    content: "export {};",
  });
  expect((await map(world.keys.adminA, world.orgA.id))["clients/"]).toBe(
    "file:///workspace/clients/",
  );
  expect(await map(world.keys.adminB, world.orgB.id)).not.toHaveProperty("clients/");
  await a.modules.deleteModule({ scope: orgScope(world.orgA.id), path: "clients/contoso.ts" });
  expect(await map(world.keys.adminA, world.orgA.id)).not.toHaveProperty("clients/");
});
