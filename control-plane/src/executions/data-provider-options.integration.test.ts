import { ExecutionKind, ExecutionStatus } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { type InProcessRunner, startInProcessRunner } from "../testing/in-process-runner.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { expectCode, globalScope, orgScope } from "../testing/wire.js";

let cp: TestControlPlane;
let world: TenancyWorld;
let runner: InProcessRunner;

/** A provider module: options name who answered, for which org, and which run produced them. */
const clients = (who: string, ttl: number, name = "clients") => `
import { dataProvider } from "bifrost";
export const provider = dataProvider({ name: ${JSON.stringify(name)}, cacheTtlSeconds: ${ttl} }, (ctx, inputs) => [
  { label: ${JSON.stringify(who)} + " for " + ctx.organization.name, value: { who: ${JSON.stringify(who)}, n: 1 } },
  { label: "second", value: 2, metadata: { run: ctx.executionId, inputs } },
]);`;

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  const put = (scope: typeof globalScope, path: string, content: string) =>
    root.modules.putModule({ scope, path, content });
  await put(globalScope, "providers/clients.ts", clients("global", 300));
  // Org A overrides the provider by name, from a module of its own at another path.
  await put(orgScope(world.orgA.id), "providers/a-clients.ts", clients("org A", 300));
  await put(globalScope, "providers/uncached.ts", clients("uncached", 0, "uncached"));
  await put(
    globalScope,
    "providers/failing.ts",
    `import { dataProvider } from "bifrost";
export const failing = dataProvider({ name: "failing" }, async (ctx) => {
  const token = await ctx.secrets.get("halo.token");
  throw new Error("halo refused token " + token);
});
export const invalid = dataProvider({ name: "invalid" }, () => [{ label: 7, value: "x" }]);
export const hangs = dataProvider({ name: "hangs" }, () => new Promise(() => { setInterval(() => {}, 1000); }));`,
  );
  await put(
    globalScope,
    "providers/probe.ts",
    `import { dataProvider } from "bifrost";
export const probe = dataProvider({ name: "probe_net", cacheTtlSeconds: 0 }, async () => {
  try { await fetch("https://api.halo.test/"); return [{ label: "reached", value: 1 }]; }
  catch (e) { return [{ label: String(e?.message ?? e) + " | " + String(e?.cause?.message ?? ""), value: 0 }]; }
});`,
  );
  await root.config.setConfig({
    scope: orgScope(world.orgA.id),
    key: "network.hosts",
    value: { kind: { $case: "jsonValue", value: '["api.halo.test"]' } },
    description: "",
  });
  await root.secrets.setSecret({
    scope: globalScope,
    name: "halo.token",
    value: "global-secret-token",
    description: "",
  });
  await cp.discovery.drain();

  runner = await startInProcessRunner(cp, root, { name: "runner-dp" });
});

afterAll(async () => {
  await runner?.stop();
  await cp?.close();
});

const options = (
  key: string,
  organizationId: string,
  dataProvider: string,
  extra: { inputs?: Record<string, unknown>; noCache?: boolean; timeoutSeconds?: number } = {},
) =>
  world.as(key).executions.getDataProviderOptions({
    organizationId,
    dataProvider,
    inputs: extra.inputs ?? {},
    noCache: extra.noCache ?? false,
    timeoutSeconds: extra.timeoutSeconds ?? 0,
  });

const providerRuns = async (organizationId: string) =>
  (
    await world.as(world.keys.platformAdmin).executions.listExecutions({
      organizationId,
      workflow: "",
      status: 0,
      kind: ExecutionKind.EXECUTION_KIND_DATA_PROVIDER,
      pageSize: 500,
      pageToken: "",
    })
  ).executions;

describe("data provider options through the execution pipeline", () => {
  test("an organization's provider overrides the global one of the same name; others get the global one, and nothing leaks", async () => {
    const a = await options(world.keys.memberA, world.orgA.id, "clients", { noCache: true });
    expect(a.cached).toBe(false);
    expect(a.options[0]).toEqual({
      label: "org A for Org A",
      value: { who: "org A", n: 1 },
      metadata: undefined,
    });
    expect(a.options[1]).toMatchObject({ label: "second", value: 2 });
    expect(a.options[1]?.metadata).toEqual({ run: a.executionId, inputs: {} });

    const b = await options(world.keys.adminB, world.orgB.id, "clients", { noCache: true });
    expect(b.options[0]?.label).toBe("global for Org B");
    expect(JSON.stringify(b)).not.toContain("org A");

    const run = await world.as(world.keys.memberA).executions.getExecution({ id: a.executionId });
    expect(run.execution).toMatchObject({
      kind: ExecutionKind.EXECUTION_KIND_DATA_PROVIDER,
      workflow: "clients",
      status: ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
      organizationId: world.orgA.id,
    });
    await expectCode(
      world.as(world.keys.adminB).executions.getExecution({ id: a.executionId }),
      status.NOT_FOUND,
    );
  });

  test("a second call is served from the cache without a new execution, per organization", async () => {
    const first = await options(world.keys.memberA, world.orgA.id, "clients", {
      inputs: { site: "hq" },
    });
    const before = (await providerRuns(world.orgA.id)).length;
    const again = await options(world.keys.adminA, world.orgA.id, "clients", {
      inputs: { site: "hq" },
    });
    expect(again.cached).toBe(true);
    expect(again.options).toEqual(first.options);
    expect(again.executionId).toBe(first.executionId);
    expect((await providerRuns(world.orgA.id)).length).toBe(before);

    // Other inputs are another entry; the handler received them.
    const other = await options(world.keys.memberA, world.orgA.id, "clients", {
      inputs: { site: "branch" },
    });
    expect(other.cached).toBe(false);
    expect(other.options[1]?.metadata).toMatchObject({ inputs: { site: "branch" } });

    // Org B and org C both resolve the global provider: each gets its own run and entry.
    const b = await options(world.keys.adminB, world.orgB.id, "clients", {
      inputs: { site: "hq" },
    });
    const c = await options(world.keys.platformAdmin, world.orgC.id, "clients", {
      inputs: { site: "hq" },
    });
    expect(c.cached).toBe(false);
    expect(c.options[0]?.label).toBe("global for Org C");
    const bAgain = await options(world.keys.adminB, world.orgB.id, "clients", {
      inputs: { site: "hq" },
    });
    expect(bAgain.cached).toBe(true);
    expect(bAgain.options[0]?.label).toBe("global for Org B");
    expect(bAgain.executionId).toBe(b.executionId);

    // Every cache key names its organization.
    const keys = await cp.redis.keys(`${cp.redisPrefix}dp-options:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect([world.orgA.id, world.orgB.id, world.orgC.id]).toContain(key.split(":").at(-2));
    }
  });

  test("callers that miss the cache together share one run", async () => {
    const before = (await providerRuns(world.orgA.id)).length;
    const inputs = { site: "opened-by-three" };
    const answers = await Promise.all([
      options(world.keys.memberA, world.orgA.id, "clients", { inputs }),
      options(world.keys.adminA, world.orgA.id, "clients", { inputs }),
      options(world.keys.memberA, world.orgA.id, "clients", { inputs }),
    ]);
    expect(new Set(answers.map((a) => a.executionId)).size).toBe(1);
    expect(answers.filter((a) => !a.cached)).toHaveLength(1);
    for (const answer of answers) expect(answer.options).toEqual(answers[0]?.options);
    expect((await providerRuns(world.orgA.id)).length).toBe(before + 1);
  });

  test("no_cache runs the provider again; a provider with cacheTtlSeconds 0 is never cached", async () => {
    const cached = await options(world.keys.memberA, world.orgA.id, "clients");
    const fresh = await options(world.keys.memberA, world.orgA.id, "clients", { noCache: true });
    expect(fresh.cached).toBe(false);
    expect(fresh.executionId).not.toBe(cached.executionId);

    const one = await options(world.keys.memberA, world.orgA.id, "uncached");
    const two = await options(world.keys.memberA, world.orgA.id, "uncached");
    expect([one.cached, two.cached]).toEqual([false, false]);
    expect(two.executionId).not.toBe(one.executionId);
  });

  test("changing the provider's module (or the org's code) is never answered with old options", async () => {
    const root = world.as(world.keys.platformAdmin);
    const before = await options(world.keys.memberA, world.orgA.id, "clients");
    expect(before.options[0]?.label).toBe("org A for Org A");
    await root.modules.putModule({
      scope: orgScope(world.orgA.id),
      path: "providers/a-clients.ts",
      content: clients("org A v2", 300),
    });
    await cp.discovery.drain();
    const after = await options(world.keys.memberA, world.orgA.id, "clients");
    expect(after.cached).toBe(false);
    expect(after.options[0]?.label).toBe("org A v2 for Org A");

    // A module of org B's tree changing leaves org A's entry alone.
    await options(world.keys.adminB, world.orgB.id, "clients");
    await root.modules.putModule({
      scope: orgScope(world.orgB.id),
      path: "shared/unrelated.ts",
      content: "export const x = 1;",
    });
    await cp.discovery.drain();
    expect((await options(world.keys.memberA, world.orgA.id, "clients")).cached).toBe(true);
    expect((await options(world.keys.adminB, world.orgB.id, "clients")).cached).toBe(false);
  });

  test("a provider that throws fails with its message, secrets redacted; invalid options are refused", async () => {
    const thrown = await expectCode(
      options(world.keys.memberA, world.orgA.id, "failing"),
      status.FAILED_PRECONDITION,
    );
    expect(thrown).toMatch(/^data provider "failing" failed \(error\): .*halo refused token/);
    expect(thrown).toContain("[redacted]");
    expect(thrown).not.toContain("global-secret-token");

    const invalid = await expectCode(
      options(world.keys.memberA, world.orgA.id, "invalid"),
      status.FAILED_PRECONDITION,
    );
    expect(invalid).toMatch(/data provider "invalid" failed \(invalid_result\): .*label/);
    // Failures are not cached: the next call runs again and fails again.
    await expectCode(
      options(world.keys.memberA, world.orgA.id, "failing"),
      status.FAILED_PRECONDITION,
    );
  });

  test("a provider past its timeout is DEADLINE_EXCEEDED and its run ends timed out", async () => {
    const message = await expectCode(
      options(world.keys.memberA, world.orgA.id, "hangs", { timeoutSeconds: 2 }),
      status.DEADLINE_EXCEEDED,
    );
    expect(message).toMatch(/data provider "hangs" did not return within its 2 s timeout/);
    const runs = await providerRuns(world.orgA.id);
    expect(runs.find((r) => r.workflow === "hangs")?.status).toBe(
      ExecutionStatus.EXECUTION_STATUS_TIMED_OUT,
    );
  });

  test("a provider reaches the hosts its organization allows, and only those", async () => {
    const a = await options(world.keys.memberA, world.orgA.id, "probe_net");
    expect(a.options[0]?.label).not.toMatch(/Requires net access|permission denied/i);
    const b = await options(world.keys.adminB, world.orgB.id, "probe_net");
    expect(b.options[0]?.label).toMatch(/Requires net access to "api.halo.test/);
  });

  test("unknown providers, bad arguments and other organizations are refused", async () => {
    const missing = await expectCode(
      options(world.keys.memberA, world.orgA.id, "no_such_provider"),
      status.NOT_FOUND,
    );
    expect(missing).toMatch(/data provider "no_such_provider" not found/);
    await expectCode(
      options(world.keys.memberA, world.orgA.id, "clients", { timeoutSeconds: 121 }),
      status.INVALID_ARGUMENT,
    );
    await expectCode(options(world.keys.memberA, world.orgA.id, ""), status.INVALID_ARGUMENT);
    // Org A's member may not run providers for org B, cached or not.
    await expectCode(
      options(world.keys.memberA, world.orgB.id, "clients"),
      status.PERMISSION_DENIED,
    );
    await expectCode(options(undefined as never, world.orgA.id, "clients"), status.UNAUTHENTICATED);
  });

  test("executions list their kind and can be filtered by it", async () => {
    const all = await world.as(world.keys.memberA).executions.listExecutions({
      organizationId: world.orgA.id,
      workflow: "",
      status: 0,
      kind: 0,
      pageSize: 500,
      pageToken: "",
    });
    expect(all.executions.length).toBeGreaterThan(0);
    expect(all.executions.every((e) => e.kind === ExecutionKind.EXECUTION_KIND_DATA_PROVIDER)).toBe(
      true,
    );
    const workflows = await world.as(world.keys.memberA).executions.listExecutions({
      organizationId: world.orgA.id,
      workflow: "",
      status: 0,
      kind: ExecutionKind.EXECUTION_KIND_WORKFLOW,
      pageSize: 500,
      pageToken: "",
    });
    expect(workflows.executions).toEqual([]);
  });
});
