import { connectControlPlane } from "@bifrost/runner/jobs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createRunnerKey } from "../testing/runner-identity.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";
import { organizationHostsKey, sandboxView } from "./sandbox-view.js";

// The claim reads the organization's tree sums and its "network.hosts" in its own statement.
// These tests hold that read to what the two separate reads (`sandboxView`) give, for an
// organization with its own value and modules, one that falls back to global, and one whose
// value is not a list of hosts, and check that a module write is seen by the next claim.

let cp: TestControlPlane;
let world: TenancyWorld;
let runner: ReturnType<typeof connectControlPlane>;
let attempt = 0;

const hosts = (json: string) => ({ kind: { $case: "jsonValue" as const, value: json } });

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/quick.ts",
    content: `import { workflow } from "bifrost";\nexport const quick = workflow({ name: "quick" }, () => ({ ok: true }));`,
  });
  await root.modules.putModule({
    scope: globalScope,
    path: "shared/halopsa.ts",
    content: `export const who = "global";`,
  });
  await root.modules.putModule({
    scope: orgScope(world.orgA.id),
    path: "shared/halopsa.ts",
    content: `export const who = "org A";`,
  });
  await root.modules.putModule({
    scope: orgScope(world.orgA.id),
    path: "shared/only-a.ts",
    content: `export const only = "A";`,
  });
  await cp.discovery.drain();
  await root.config.setConfig({
    scope: globalScope,
    key: organizationHostsKey,
    value: hosts('["api.global.test"]'),
    description: "",
  });
  await root.config.setConfig({
    scope: orgScope(world.orgA.id),
    key: organizationHostsKey,
    value: hosts('["api.a.test", 7]'),
    description: "",
  });
  await root.config.setConfig({
    scope: orgScope(world.orgC.id),
    key: organizationHostsKey,
    value: { kind: { $case: "stringValue", value: "api.c.test" } },
    description: "",
  });
  runner = connectControlPlane(cp.address, await createRunnerKey(root, "claim-view"));
});

afterAll(async () => {
  runner?.close();
  await cp?.close();
});

/** Starts "quick" for the organization (nothing consumes the job) and claims it as a runner. */
async function claimFor(organizationId: string) {
  const { execution } = await world.as(world.keys.platformAdmin).executions.startExecution({
    organizationId,
    workflow: "quick",
    params: {},
    waitForResult: false,
    waitTimeoutSeconds: 0,
  });
  attempt++;
  return runner.claimExecution({
    executionId: execution?.id as string,
    attempt: 1,
    runnerName: `claim-view-${attempt}`,
  });
}

const separateReads = (organizationId: string) =>
  sandboxView({ modules: cp.stores.modules, config: cp.stores.config }, organizationId);

describe("the claim's sandbox view", () => {
  test("is what the separate reads give, for each organization and the global fallback", async () => {
    const claims = {
      a: await claimFor(world.orgA.id),
      b: await claimFor(world.orgB.id),
      c: await claimFor(world.orgC.id),
    };
    for (const [name, org] of [
      ["a", world.orgA],
      ["b", world.orgB],
      ["c", world.orgC],
    ] as const) {
      const claim = claims[name];
      const view = await separateReads(org.id);
      expect(claim.claimed, name).toBe(true);
      expect(claim.organizationId, name).toBe(org.id);
      expect(claim.viewFingerprint, name).toBe(view.fingerprint);
      expect(JSON.parse(claim.importMapJson), name).toEqual(JSON.parse(view.importMapJson));
      expect(claim.organizationHosts, name).toEqual(view.organizationHosts);
    }
    // A's own hosts (strings only), B the global ones, C's value is not a list: none.
    expect(claims.a.organizationHosts).toEqual(["api.a.test"]);
    expect(claims.b.organizationHosts).toEqual(["api.global.test"]);
    expect(claims.c.organizationHosts).toEqual([]);
    // A's tree has modules of its own; B's and C's are both the global tree.
    expect(claims.b.viewFingerprint).toBe(claims.c.viewFingerprint);
    expect(claims.a.viewFingerprint).not.toBe(claims.b.viewFingerprint);
  });

  test("sees a module written since the last claim, and only for its organization", async () => {
    const before = { a: await claimFor(world.orgA.id), b: await claimFor(world.orgB.id) };
    await world.as(world.keys.platformAdmin).modules.putModule({
      scope: orgScope(world.orgB.id),
      path: "shared/only-b.ts",
      content: `export const only = "B";`,
    });
    const after = { a: await claimFor(world.orgA.id), b: await claimFor(world.orgB.id) };
    expect(after.a.viewFingerprint).toBe(before.a.viewFingerprint);
    expect(after.b.viewFingerprint).not.toBe(before.b.viewFingerprint);
    expect(after.b.viewFingerprint).toBe((await separateReads(world.orgB.id)).fingerprint);
    // C still sees the global tree B had before.
    expect((await claimFor(world.orgC.id)).viewFingerprint).toBe(before.b.viewFingerprint);
  });

  test("follows a hosts change of the global scope for organizations without their own", async () => {
    await world.as(world.keys.platformAdmin).config.setConfig({
      scope: globalScope,
      key: organizationHostsKey,
      value: hosts('["api.global2.test"]'),
      description: "",
    });
    expect((await claimFor(world.orgB.id)).organizationHosts).toEqual(["api.global2.test"]);
    expect((await claimFor(world.orgA.id)).organizationHosts).toEqual(["api.a.test"]);
  });
});
