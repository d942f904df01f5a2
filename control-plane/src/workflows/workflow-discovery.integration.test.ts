import { Provenance } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { codeOf, expectCode, globalScope, orgScope } from "../testing/wire.js";

let cp: TestControlPlane;
let world: TenancyWorld;

const onboard = (description: string) => `
import { param, workflow } from "bifrost";
import { halo } from "shared/halopsa.ts";
export const onboard = workflow(
  { name: "onboard_user", description: ${JSON.stringify(description)}, category: "Users", network: ["api.halo.test"],
    params: { email: param.email({ required: true }), seats: param.int({ default: 1, validation: { min: 1 } }) } },
  async ({ email }) => ({ email, halo: halo() }),
);`;

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  const put = (scope: ReturnType<typeof orgScope>, path: string, content: string) =>
    root.modules.putModule({ scope, path, content });
  await put(globalScope, "shared/halopsa.ts", "export const halo = () => 'global';");
  await put(globalScope, "workflows/onboard.ts", onboard("global onboarding"));
  await put(globalScope, "settings.json", '{"a": 1}');
  await put(orgScope(world.orgA.id), "workflows/onboard.ts", onboard("org A onboarding"));
  await put(
    orgScope(world.orgA.id),
    "workflows/a-only.ts",
    'import { workflow } from "bifrost";\nexport const mine = workflow({ name: "a_only" }, () => "A");',
  );
  await put(
    orgScope(world.orgB.id),
    "workflows/broken.ts",
    'import { workflow } from "bifrost";\nexport const x = (',
  );
  await cp.discovery.drain();
  // A later module claiming a name another module of the scope already holds.
  await put(
    orgScope(world.orgA.id),
    "workflows/a-clash.ts",
    'import { workflow } from "bifrost";\nexport const again = workflow({ name: "a_only", description: "clash" }, () => 1);',
  );
  await cp.discovery.drain();
});

afterAll(async () => {
  await cp?.close();
});

const workflowsOf = async (key: string, organizationId: string) =>
  Object.fromEntries(
    (
      (await world.as(key).workflows.listEffectiveWorkflows({ organizationId })).workflows ?? []
    ).map((w) => [w.workflow?.name, [w.workflow?.description, w.provenance]]),
  );

describe("workflow discovery across organizations", () => {
  test("each organization sees its own override of a workflow and the global one where it has none", async () => {
    expect(await workflowsOf(world.keys.memberA, world.orgA.id)).toEqual({
      a_only: ["", Provenance.PROVENANCE_ORGANIZATION],
      onboard_user: ["org A onboarding", Provenance.PROVENANCE_OVERRIDE],
    });
    expect(await workflowsOf(world.keys.adminB, world.orgB.id)).toEqual({
      onboard_user: ["global onboarding", Provenance.PROVENANCE_GLOBAL],
    });
    const got = await world
      .as(world.keys.memberA)
      .workflows.getWorkflow({ organizationId: world.orgA.id, name: "onboard_user" });
    expect(got.workflow?.scope).toEqual(orgScope(world.orgA.id));
    expect(got.workflow?.params.map((p) => [p.name, p.type, p.required, p.defaultValue])).toEqual([
      ["email", "email", true, undefined],
      ["seats", "int", false, 1],
    ]);
    expect(got.workflow?.network).toEqual(["api.halo.test"]);
    expect(got.workflow?.modulePath).toBe("workflows/onboard.ts");
  });

  test("no organization can see or fetch another organization's workflows", async () => {
    const b = world.as(world.keys.adminB);
    await expectCode(
      b.workflows.getWorkflow({ organizationId: world.orgB.id, name: "a_only" }),
      status.NOT_FOUND,
    );
    expect(
      await codeOf(b.workflows.listEffectiveWorkflows({ organizationId: world.orgA.id })),
    ).toBe("PERMISSION_DENIED");
    expect(await codeOf(b.workflows.listWorkflows({ scope: orgScope(world.orgA.id) }))).toBe(
      "PERMISSION_DENIED",
    );
    expect(
      await codeOf(
        world.as(world.keys.memberA).workflows.listWorkflows({ scope: orgScope(world.orgA.id) }),
      ),
    ).toBe("PERMISSION_DENIED");
  });

  test("a module that fails to load is reported on the module and breaks no other workflow", async () => {
    const { module } = await world
      .as(world.keys.adminB)
      .modules.getModule({ scope: orgScope(world.orgB.id), path: "workflows/broken.ts" });
    expect(module?.discoveryStatus).toBe("failed");
    expect(module?.discoveryError).toMatch(/broken\.ts/);
    expect(Object.keys(await workflowsOf(world.keys.adminB, world.orgB.id))).toEqual([
      "onboard_user",
    ]);
  });

  test("a second module declaring a taken name fails, naming the module that has it", async () => {
    const { module } = await world
      .as(world.keys.adminA)
      .modules.getModule({ scope: orgScope(world.orgA.id), path: "workflows/a-clash.ts" });
    expect(module?.discoveryStatus).toBe("failed");
    expect(module?.discoveryError).toBe(
      'workflow name "a_only" is already declared by module "workflows/a-only.ts" in this scope',
    );
    const { module: ok } = await world
      .as(world.keys.adminA)
      .modules.getModule({ scope: orgScope(world.orgA.id), path: "workflows/a-only.ts" });
    expect(ok?.discoveryStatus).toBe("ok");
  });

  test("JSON modules are not loaded", async () => {
    const { module } = await world
      .as(world.keys.platformAdmin)
      .modules.getModule({ scope: globalScope, path: "settings.json" });
    expect(module?.discoveryStatus).toBe("skipped");
  });

  test("rewriting a module rediscovers it; deleting it removes its workflows and the global one shows through", async () => {
    const a = world.as(world.keys.adminA);
    const put = await a.modules.putModule({
      scope: orgScope(world.orgA.id),
      path: "workflows/onboard.ts",
      content: onboard("org A v2"),
    });
    expect(put.module?.discoveryStatus).toBe("pending");
    await cp.discovery.drain();
    expect((await workflowsOf(world.keys.adminA, world.orgA.id)).onboard_user).toEqual([
      "org A v2",
      Provenance.PROVENANCE_OVERRIDE,
    ]);
    await a.modules.deleteModule({ scope: orgScope(world.orgA.id), path: "workflows/onboard.ts" });
    expect((await workflowsOf(world.keys.adminA, world.orgA.id)).onboard_user).toEqual([
      "global onboarding",
      Provenance.PROVENANCE_GLOBAL,
    ]);
  });

  test("an organization's module is discovered inside its own tree: it can import the organization's override", async () => {
    const a = world.as(world.keys.adminA);
    await a.modules.putModule({
      scope: orgScope(world.orgA.id),
      path: "shared/halopsa.ts",
      content: "export const halo = () => 'A'; export const only = 1;",
    });
    await a.modules.putModule({
      scope: orgScope(world.orgA.id),
      path: "workflows/needs-override.ts",
      content:
        'import { workflow } from "bifrost";\nimport { only } from "shared/halopsa.ts";\nexport const w = workflow({ name: "needs_override", description: String(only) }, () => only);',
    });
    await cp.discovery.drain();
    expect((await workflowsOf(world.keys.adminA, world.orgA.id)).needs_override).toEqual([
      "1",
      Provenance.PROVENANCE_ORGANIZATION,
    ]);
  });
});
