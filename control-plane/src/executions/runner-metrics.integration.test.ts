import { ExecutionStatus } from "@bifrost/proto";
import {
  createRunnerMetrics,
  type MetricsServer,
  type RunnerMetrics,
  seriesValue as sample,
  startMetricsServer,
} from "@bifrost/runner/metrics";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { type InProcessRunner, startInProcessRunner } from "../testing/in-process-runner.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";
import { lostExecutionError } from "./execution-store.js";

// A runner's metrics endpoint, scraped over HTTP after real executions of two organizations
// and one that falls back to global: the counts add up, and nothing of any tenant (ids,
// names, workflows, modules, results, messages) appears in what an operator scrapes.

let cp: TestControlPlane;
let world: TenancyWorld;
let runner: InProcessRunner;
let metrics: RunnerMetrics;
let server: MetricsServer;

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  const who = (name: string) => `export const who = ${JSON.stringify(name)};`;
  await root.modules.putModule({
    scope: globalScope,
    path: "shared/who.ts",
    content: who("global-who"),
  });
  await root.modules.putModule({
    scope: orgScope(world.orgA.id),
    path: "shared/who.ts",
    content: who("org-a-who"),
  });
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/greet_tenant.ts",
    content: `import { workflow } from "bifrost";
import { who } from "shared/who.ts";
export const greet = workflow({ name: "greet_tenant" }, (_params, ctx) => ({ who, org: ctx.organization.name }));`,
  });
  await root.modules.putModule({
    scope: orgScope(world.orgB.id),
    path: "workflows/b_only_broken.ts",
    content: `import { UserError, workflow } from "bifrost";
export const broken = workflow({ name: "b_only_broken" }, () => { throw new UserError("org-b-private-failure"); });`,
  });
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/nap.ts",
    content: `import { workflow } from "bifrost";
export const nap = workflow({ name: "nap" }, async (_p, ctx) => {
  ctx.log.info("napping");
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return "rested";
});`,
  });
  await cp.discovery.drain();
  metrics = createRunnerMetrics({ capacity: 2, busy: () => 0 });
  server = await startMetricsServer(metrics.registry, "127.0.0.1:0");
  runner = await startInProcessRunner(cp, root, { name: "metrics-runner", metrics });
});

afterAll(async () => {
  await runner?.stop();
  await server?.close();
  await cp?.close();
});

const run = async (organizationId: string, workflow: string) => {
  const { execution } = await world.as(world.keys.platformAdmin).executions.startExecution({
    organizationId,
    workflow,
    params: {},
    waitForResult: true,
    waitTimeoutSeconds: 60,
  });
  return execution;
};

describe("a runner's metrics endpoint", () => {
  test("counts each organization's executions by outcome and leaks no tenant", async () => {
    const a = await run(world.orgA.id, "greet_tenant");
    const b = await run(world.orgB.id, "b_only_broken");
    const c = await run(world.orgC.id, "greet_tenant");
    expect(a?.result).toEqual({ who: "org-a-who", org: "Org A" });
    expect(b?.status).toBe(ExecutionStatus.EXECUTION_STATUS_FAILED);
    expect(c?.result).toEqual({ who: "global-who", org: "Org C" });

    const response = await fetch(`http://${server.address}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(sample(text, 'bifrost_runner_executions_total{status="succeeded",reason="none"}')).toBe(
      2,
    );
    expect(sample(text, 'bifrost_runner_executions_total{status="failed",reason="user"}')).toBe(1);
    expect(
      sample(text, 'bifrost_runner_execution_duration_seconds_count{status="succeeded"}'),
    ).toBe(2);
    expect(sample(text, "bifrost_runner_sandbox_duration_seconds_count")).toBe(3);
    const starts = ["prepared", "early", "after_claim"].map(
      (how) => sample(text, `bifrost_runner_sandbox_starts_total{how="${how}"}`) ?? 0,
    );
    expect(starts.reduce((x, y) => x + y, 0)).toBe(3);
    expect(sample(text, "bifrost_runner_slots")).toBe(2);

    for (const tenantData of [
      world.orgA.id,
      world.orgB.id,
      world.orgC.id,
      "Org A",
      "Org B",
      "Org C",
      "greet_tenant",
      "b_only_broken",
      "shared/who",
      "org-a-who",
      "global-who",
      "org-b-private-failure",
      a?.id as string,
      b?.id as string,
    ]) {
      expect(text).not.toContain(tenantData);
    }
  });

  test("a run whose execution ended while it ran (failed as lost) is finished by its runner, not failed and redelivered", async () => {
    const api = world.as(world.keys.platformAdmin);
    const { execution } = await api.executions.startExecution({
      organizationId: world.orgA.id,
      workflow: "nap",
      params: {},
      waitForResult: false,
      waitTimeoutSeconds: 0,
    });
    const id = execution?.id as string;
    for (let i = 0; i < 200; i++) {
      const { execution: now } = await api.executions.getExecution({ id });
      if (now?.logs.some((log) => log.message === "napping")) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    // What the abandoned-job watcher does when it believes the run is lost.
    await cp.stores.executions.fail(id, lostExecutionError(3));
    const scrape = async () => (await fetch(`http://${server.address}/metrics`)).text();
    const runs = async () =>
      sample(await scrape(), 'bifrost_runner_executions_total{status="succeeded",reason="none"}');
    for (let i = 0; i < 200 && (await runs()) !== 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await runs()).toBe(3);
    // Its completion was refused (the token died with the execution), and that ended the job.
    expect(sample(await scrape(), "bifrost_runner_job_failures_total") ?? 0).toBe(0);
    const { execution: ended } = await api.executions.getExecution({ id });
    expect(ended?.status).toBe(ExecutionStatus.EXECUTION_STATUS_FAILED);
    expect(ended?.error?.kind).toBe("lost");
    expect(ended?.attempt).toBe(1);
  });
});
