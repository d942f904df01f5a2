import { type ConfigValue, Provenance } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";

const str = (value: string): ConfigValue => ({ kind: { $case: "stringValue", value } });

let cp: TestControlPlane;
let world: TenancyWorld;

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  await root.config.setConfig({
    scope: globalScope,
    key: "halo.url",
    value: str("https://global.halo"),
    description: "",
  });
  await root.config.setConfig({
    scope: globalScope,
    key: "retries",
    value: { kind: { $case: "intValue", value: "3" } },
    description: "",
  });
  await world.as(world.keys.adminA).config.setConfig({
    scope: orgScope(world.orgA.id),
    key: "halo.url",
    value: str("https://a.halo"),
    description: "A's tenant",
  });
  await world.as(world.keys.adminB).config.setConfig({
    scope: orgScope(world.orgB.id),
    key: "halo.url",
    value: str("https://b.halo"),
    description: "",
  });
  await world.as(world.keys.adminB).config.setConfig({
    scope: orgScope(world.orgB.id),
    key: "b.only",
    value: { kind: { $case: "jsonValue", value: '{"tier": "gold"}' } },
    description: "",
  });
});

afterAll(async () => {
  await cp?.close();
});

const resolve = (
  key: string,
  organizationId: string,
  configKey: string,
  defaultValue?: ConfigValue,
) => world.as(key).config.resolveConfig({ organizationId, key: configKey, defaultValue });

describe("config cascade", () => {
  test("each organization reads its own value, else the global one", async () => {
    expect((await resolve(world.keys.adminA, world.orgA.id, "halo.url")).value).toEqual(
      str("https://a.halo"),
    );
    expect((await resolve(world.keys.adminB, world.orgB.id, "halo.url")).value).toEqual(
      str("https://b.halo"),
    );
    const c = await resolve(world.keys.platformAdmin, world.orgC.id, "halo.url");
    expect(c.value).toEqual(str("https://global.halo"));
    expect(c.provenance).toBe(Provenance.PROVENANCE_GLOBAL);
    const a = await resolve(world.keys.adminA, world.orgA.id, "retries");
    expect(a.value).toEqual({ kind: { $case: "intValue", value: "3" } });
  });

  test("a key neither the organization nor global has returns the caller's default with found = false", async () => {
    const missing = await resolve(world.keys.adminA, world.orgA.id, "nope", str("fallback"));
    expect(missing.found).toBe(false);
    expect(missing.value).toEqual(str("fallback"));
  });

  test("another organization's key is invisible: resolving B's key for A falls to the default", async () => {
    const leaked = await resolve(world.keys.adminA, world.orgA.id, "b.only", str("default"));
    expect(leaked.found).toBe(false);
    expect(leaked.value).toEqual(str("default"));
  });

  test("the effective listing carries provenance and holds no other organization's keys", async () => {
    const { entries } = await world
      .as(world.keys.adminA)
      .config.listEffectiveConfig({ organizationId: world.orgA.id });
    expect(entries?.map((e) => [e.entry?.key, e.provenance])).toEqual([
      ["halo.url", Provenance.PROVENANCE_OVERRIDE],
      ["retries", Provenance.PROVENANCE_GLOBAL],
    ]);
    const b = await world
      .as(world.keys.adminB)
      .config.listEffectiveConfig({ organizationId: world.orgB.id });
    expect(b.entries?.map((e) => [e.entry?.key, e.provenance])).toEqual([
      ["b.only", Provenance.PROVENANCE_ORGANIZATION],
      ["halo.url", Provenance.PROVENANCE_OVERRIDE],
      ["retries", Provenance.PROVENANCE_GLOBAL],
    ]);
  });

  test("deleting an override falls back to the global value", async () => {
    const c = world.as(world.keys.platformAdmin);
    await c.config.setConfig({
      scope: orgScope(world.orgC.id),
      key: "retries",
      value: { kind: { $case: "intValue", value: "9" } },
      description: "",
    });
    expect((await resolve(world.keys.platformAdmin, world.orgC.id, "retries")).provenance).toBe(
      Provenance.PROVENANCE_OVERRIDE,
    );
    await c.config.deleteConfig({ scope: orgScope(world.orgC.id), key: "retries" });
    const after = await resolve(world.keys.platformAdmin, world.orgC.id, "retries");
    expect(after.value).toEqual({ kind: { $case: "intValue", value: "3" } });
    expect(after.provenance).toBe(Provenance.PROVENANCE_GLOBAL);
  });

  test("typed values round-trip exactly: int64 beyond 2^53, bool, normalised JSON, secret references", async () => {
    const a = world.as(world.keys.adminA);
    const scope = orgScope(world.orgA.id);
    const cases: Array<[string, ConfigValue, ConfigValue]> = [
      [
        "big",
        { kind: { $case: "intValue", value: "9007199254740993" } },
        { kind: { $case: "intValue", value: "9007199254740993" } },
      ],
      [
        "flag",
        { kind: { $case: "boolValue", value: false } },
        { kind: { $case: "boolValue", value: false } },
      ],
      [
        "doc",
        { kind: { $case: "jsonValue", value: '{ "a" : [1, 2] }' } },
        { kind: { $case: "jsonValue", value: '{"a":[1,2]}' } },
      ],
      [
        "token",
        { kind: { $case: "secretRef", value: "halo.token" } },
        { kind: { $case: "secretRef", value: "halo.token" } },
      ],
    ];
    for (const [key, value, expected] of cases) {
      await a.config.setConfig({ scope, key, value, description: "" });
      expect((await a.config.getConfig({ scope, key })).entry?.value, key).toEqual(expected);
    }
  });

  test("org admins cannot write global config or read another organization's", async () => {
    const a = world.as(world.keys.adminA);
    const denied = await a.config
      .setConfig({ scope: globalScope, key: "halo.url", value: str("evil"), description: "" })
      .catch((e) => e);
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    const foreign = await a.config.listConfig({ scope: orgScope(world.orgB.id) }).catch((e) => e);
    expect(foreign.code).toBe(status.PERMISSION_DENIED);
    expect((await resolve(world.keys.platformAdmin, world.orgC.id, "halo.url")).value).toEqual(
      str("https://global.halo"),
    );
  });
});
