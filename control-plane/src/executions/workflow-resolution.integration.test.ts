import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { type InProcessRunner, startInProcessRunner } from "../testing/in-process-runner.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { expectCode, globalScope, orgScope } from "../testing/wire.js";

// The execution store remembers which declaration a workflow name resolved to and inserts
// under the condition that it still does. These tests change the declarations between
// starts of the same name, for two organizations and the global scope, and check that every
// start runs, and checks its params against, what the name resolves to at that moment.

let cp: TestControlPlane;
let world: TenancyWorld;
let runner: InProcessRunner;

const greet = (who: string, params: string, uses: string) => `
import { param, workflow } from "bifrost";
export const greet = workflow({ name: "greet", params: { ${params} } }, async (p) => ({ who: ${JSON.stringify(who)}, got: ${uses} }));`;
const v1 = greet("global v1", "name: param.string({ required: true })", "p.name");
const v2 = greet("global v2", "count: param.int({ required: true })", "p.count");

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  await root.modules.putModule({ scope: globalScope, path: "workflows/greet.ts", content: v1 });
  await cp.discovery.drain();
  runner = await startInProcessRunner(cp, root, { name: "resolution-runner" });
});

afterAll(async () => {
  await runner?.stop();
  await cp?.close();
});

const start = (key: string, organizationId: string, params: Record<string, unknown>) =>
  world.as(key).executions.startExecution({
    organizationId,
    workflow: "greet",
    params,
    waitForResult: true,
    waitTimeoutSeconds: 60,
  });

async function put(scope: typeof globalScope, content: string, path = "workflows/greet.ts") {
  await world.as(world.keys.platformAdmin).modules.putModule({ scope, path, content });
  await cp.discovery.drain();
}

async function executionCount(organizationId: string): Promise<number> {
  const [row] = await cp.sql<[{ count: number }]>`
    select count(*)::int as count from executions where organization_id = ${organizationId}`;
  return row.count;
}

describe("starting a workflow whose declaration changed since the last start of its name", () => {
  test("each start runs what the name resolves to now: an override, a new version, the global again, nothing", async () => {
    const { orgA, orgB } = world;
    const a = (params: Record<string, unknown>) => start(world.keys.memberA, orgA.id, params);
    const b = (params: Record<string, unknown>) => start(world.keys.adminB, orgB.id, params);

    // Both organizations resolve "greet" to the global declaration (and remember it).
    expect((await a({ name: "a1" })).execution?.result).toEqual({ who: "global v1", got: "a1" });
    expect((await b({ name: "b1" })).execution?.result).toEqual({ who: "global v1", got: "b1" });

    // Org A's own declaration of the name wins for A from its very next start; B is untouched.
    // In a module of another path: the execution names the module it runs.
    await put(
      orgScope(orgA.id),
      greet("org A", "name: param.string({ required: true })", "p.name"),
      "workflows/org-a-greet.ts",
    );
    expect((await a({ name: "a2" })).execution?.result).toEqual({ who: "org A", got: "a2" });
    expect((await b({ name: "b2" })).execution?.result).toEqual({ who: "global v1", got: "b2" });

    // A new global version with another schema. Params the remembered schema would refuse
    // are checked against the new one and run; params only the old one accepted are refused
    // naming the new schema's field; nothing is recorded for the refusal.
    await put(globalScope, v2);
    expect((await b({ count: 3 })).execution?.result).toEqual({ who: "global v2", got: 3 });
    const before = await executionCount(orgB.id);
    expect(await expectCode(b({ name: "b3" }), status.INVALID_ARGUMENT)).toMatch(/params\.count/);
    expect(await executionCount(orgB.id)).toBe(before);
    // Org A still runs its own: the global change is not A's.
    expect((await a({ name: "a3" })).execution?.result).toEqual({ who: "org A", got: "a3" });

    // Org A's override deleted: A falls back to the global version, with its schema.
    await world.as(world.keys.platformAdmin).modules.deleteModule({
      scope: orgScope(orgA.id),
      path: "workflows/org-a-greet.ts",
    });
    await cp.discovery.drain();
    expect(await expectCode(a({ name: "a4" }), status.INVALID_ARGUMENT)).toMatch(/params\.count/);
    expect((await a({ count: 4 })).execution?.result).toEqual({ who: "global v2", got: 4 });

    // The global declaration gone: the name resolves to nothing for either organization,
    // and no start leaves an execution behind.
    const counts = [await executionCount(orgA.id), await executionCount(orgB.id)];
    await world.as(world.keys.platformAdmin).modules.deleteModule({
      scope: globalScope,
      path: "workflows/greet.ts",
    });
    await cp.discovery.drain();
    await expectCode(a({ count: 5 }), status.NOT_FOUND);
    await expectCode(b({ count: 5 }), status.NOT_FOUND);
    expect([await executionCount(orgA.id), await executionCount(orgB.id)]).toEqual(counts);
  });

  test("an organization deactivated after a start is refused on its next one, and nothing is recorded", async () => {
    const root = world.as(world.keys.platformAdmin);
    await put(globalScope, v1);
    const { organization } = await root.organizations.createOrganization({ name: "Soon dormant" });
    const id = organization?.id as string;
    const first = await start(world.keys.platformAdmin, id, { name: "x" });
    expect(first.execution?.result).toEqual({ who: "global v1", got: "x" });
    await root.organizations.updateOrganization({ id, active: false });
    const message = await expectCode(
      start(world.keys.platformAdmin, id, { name: "y" }),
      status.FAILED_PRECONDITION,
    );
    expect(message).toBe(`organization "${id}" is inactive`);
    expect(await executionCount(id)).toBe(1);
  });
});
