import { seriesValue, startMetricsServer } from "@bifrost/runner/metrics";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";
import { createControlPlaneMetrics } from "./control-plane-metrics.js";

// The control plane's metrics endpoint, scraped over HTTP after calls of two organizations'
// users, a platform admin and a caller with no key: every RPC is counted by method and status
// code, executions waiting for a runner are counted over all organizations, and nothing of a
// tenant (ids, names, workflows, keys) appears in what an operator scrapes.

let cp: TestControlPlane;
let world: TenancyWorld;
let scrape: () => Promise<string>;
let closeServer: () => Promise<void>;

beforeAll(async () => {
  cp = await startTestControlPlane({ metrics: true });
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/tenant_probe.ts",
    content: `import { workflow } from "bifrost";
export const probe = workflow({ name: "tenant_probe" }, () => "probed");`,
  });
  await root.modules.putModule({
    scope: orgScope(world.orgB.id),
    path: "workflows/b_secret_flow.ts",
    content: `import { workflow } from "bifrost";
export const flow = workflow({ name: "b_secret_flow" }, () => "b");`,
  });
  await cp.discovery.drain();
  const registry = cp.metrics?.registry;
  if (!registry) throw new Error("the test control plane was started without metrics");
  const server = await startMetricsServer(registry, "127.0.0.1:0");
  closeServer = () => server.close();
  scrape = async () => {
    const response = await fetch(`http://${server.address}/metrics`);
    expect(response.status).toBe(200);
    return response.text();
  };
});

afterAll(async () => {
  await closeServer?.();
  await cp?.close();
});

/** A series' value, 0 while it has not been counted yet (deltas start from nothing). */
const sample = (text: string, series: string) => seriesValue(text, series) ?? 0;

const handled = (text: string, method: string, code: string) =>
  sample(text, `bifrost_grpc_server_handled_total{method="${method}",code="${code}"}`);

describe("the control plane's metrics endpoint", () => {
  test("counts RPCs by method and code and queued executions, and leaks no tenant", async () => {
    const before = await scrape();
    const start = (key: string, organizationId: string, workflow: string) =>
      world.as(key).executions.startExecution({
        organizationId,
        workflow,
        params: {},
        waitForResult: false,
        waitTimeoutSeconds: 0,
      });
    // No runner here: started executions stay queued.
    const a = await start(world.keys.adminA, world.orgA.id, "tenant_probe");
    const b = await start(world.keys.adminB, world.orgB.id, "b_secret_flow");
    await expect(start(world.keys.adminA, world.orgA.id, "b_secret_flow")).rejects.toThrow(
      /NOT_FOUND/,
    );
    await expect(start(world.keys.adminA, world.orgB.id, "b_secret_flow")).rejects.toThrow(
      /PERMISSION_DENIED/,
    );
    await expect(start("bfk_0000000000000000_nope", world.orgA.id, "tenant_probe")).rejects.toThrow(
      /UNAUTHENTICATED/,
    );
    await world.as(world.keys.memberA).executions.getExecution({ id: a.execution?.id as string });

    const text = await scrape();
    const delta = (method: string, code: string) =>
      handled(text, method, code) - handled(before, method, code);
    expect(delta("StartExecution", "OK")).toBe(2);
    expect(delta("StartExecution", "NOT_FOUND")).toBe(1);
    expect(delta("StartExecution", "PERMISSION_DENIED")).toBe(1);
    expect(delta("StartExecution", "UNAUTHENTICATED")).toBe(1);
    expect(delta("GetExecution", "OK")).toBe(1);
    expect(
      sample(text, 'bifrost_grpc_server_handling_seconds_count{method="StartExecution"}') -
        sample(before, 'bifrost_grpc_server_handling_seconds_count{method="StartExecution"}'),
    ).toBe(5);
    expect(sample(text, 'bifrost_executions_active{status="queued"}')).toBe(2);
    expect(sample(text, 'bifrost_executions_active{status="running"}')).toBe(0);
    expect(text).toContain("bifrost_control_plane_process_cpu_seconds_total");

    for (const tenantData of [
      world.orgA.id,
      world.orgB.id,
      world.orgC.id,
      "Org A",
      "Org B",
      "tenant_probe",
      "b_secret_flow",
      "workflows/",
      a.execution?.id as string,
      b.execution?.id as string,
      world.users.adminA,
      world.users.adminB,
      world.keys.adminA.split("_")[1] as string,
    ]) {
      expect(text).not.toContain(tenantData);
    }
  });

  test("with the database away a scrape still answers, leaving the execution counts out", async () => {
    const away = postgres("postgres://postgres@127.0.0.1:1/bifrost", {
      max: 1,
      connect_timeout: 2,
      onnotice: () => {},
    });
    try {
      const metrics = createControlPlaneMetrics({ sql: away });
      metrics.rpc("GetExecution", 0, 3);
      const text = await metrics.registry.metrics();
      expect(text).toContain(
        'bifrost_grpc_server_handled_total{method="GetExecution",code="OK"} 1',
      );
      expect(text).toContain("bifrost_control_plane_process_cpu_seconds_total");
      expect(text).not.toContain("bifrost_executions_active{");
    } finally {
      await away.end({ timeout: 1 });
    }
  });
});
