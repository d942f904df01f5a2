import type { Execution } from "@bifrost/proto";
import { hasEnded, waitForExecution } from "./execution-waits.js";
import type { TestControlPlane } from "./harness.js";
import { createRunnerKey } from "./runner-identity.js";
import { createTenancyWorld, type TenancyWorld } from "./tenancy-world.js";
import { globalScope, orgScope } from "./wire.js";

/**
 * What the resilience tests share: orgs A and B (B overrides a shared module and a config
 * value), a workflow that naps, then reads config through the control plane and returns
 * whose it is, and a runner identity's key.
 */
export interface ResilienceWorld {
  world: TenancyWorld;
  runnerKey: string;
  /** The result a nap of `n` must end with for this organization. */
  expected(org: "A" | "B", n: number): { org: string; label: string; greeting: string; n: number };
  /** Starts `nap` for org A or B (by its member/admin), sleeping `ms` before finishing. */
  startNap(org: "A" | "B", n: number, ms: number): Promise<string>;
  /** Polls until the execution is no longer queued or running (at most `withinMs`). */
  waitForEnd(id: string, withinMs?: number): Promise<Execution>;
  /** Polls until `check` holds for the execution (at most `withinMs`). */
  waitFor(id: string, check: (e: Execution) => boolean, withinMs?: number): Promise<Execution>;
}

const napModule = `import { param, workflow } from "bifrost";
import { label } from "shared/label.ts";
export const nap = workflow(
  { name: "nap", params: { n: param.int({ required: true }), ms: param.int({ default: 0 }) } },
  async ({ n, ms }, ctx) => {
    ctx.log.info("napping", { n, ms });
    await new Promise((resolve) => setTimeout(resolve, ms));
    const greeting = await ctx.config.get("greeting");
    return { org: ctx.organization.name, label, greeting, n };
  },
);
`;

/** Writes the modules and config, discovers them and creates a runner identity. */
export async function createResilienceWorld(cp: TestControlPlane): Promise<ResilienceWorld> {
  const world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/nap.ts",
    content: napModule,
  });
  await root.modules.putModule({
    scope: globalScope,
    path: "shared/label.ts",
    content: `export const label = "global";`,
  });
  await root.modules.putModule({
    scope: orgScope(world.orgB.id),
    path: "shared/label.ts",
    content: `export const label = "org B's own";`,
  });
  const text = (value: string) => ({ kind: { $case: "stringValue" as const, value } });
  await root.config.setConfig({
    scope: globalScope,
    key: "greeting",
    value: text("hello"),
    description: "",
  });
  await root.config.setConfig({
    scope: orgScope(world.orgB.id),
    key: "greeting",
    value: text("hello from B"),
    description: "",
  });
  await cp.discovery.drain();
  const runnerKey = await createRunnerKey(root, "resilience");

  const waitFor = (id: string, check: (e: Execution) => boolean, withinMs?: number) =>
    waitForExecution(world.as(world.keys.platformAdmin), id, check, withinMs);
  return {
    world,
    runnerKey,
    expected: (org, n) =>
      org === "A"
        ? { org: "Org A", label: "global", greeting: "hello", n }
        : { org: "Org B", label: "org B's own", greeting: "hello from B", n },
    async startNap(org, n, ms) {
      const api = world.as(org === "A" ? world.keys.memberA : world.keys.adminB);
      const { execution } = await api.executions.startExecution({
        organizationId: org === "A" ? world.orgA.id : world.orgB.id,
        workflow: "nap",
        params: { n, ms },
        waitForResult: false,
        waitTimeoutSeconds: 0,
      });
      return execution?.id as string;
    },
    waitFor,
    waitForEnd: (id, withinMs) => waitFor(id, hasEnded, withinMs),
  };
}
