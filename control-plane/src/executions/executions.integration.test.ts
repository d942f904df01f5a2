import { ExecutionStatus } from "@bifrost/proto";
import { connectControlPlane } from "@bifrost/runner/jobs";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { systemActor } from "../audit/audit-log.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { type InProcessRunner, startInProcessRunner } from "../testing/in-process-runner.js";
import { createRunnerKey } from "../testing/runner-identity.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { expectCode, globalScope, orgScope } from "../testing/wire.js";

let cp: TestControlPlane;
let world: TenancyWorld;
let runner: InProcessRunner;

const halopsa = (who: string) => `export const halo = () => ${JSON.stringify(who)};`;

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  const root = world.as(world.keys.platformAdmin);
  await root.modules.putModule({
    scope: globalScope,
    path: "shared/halopsa.ts",
    content: halopsa("global"),
  });
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/onboard.ts",
    content: `
import { param, workflow } from "bifrost";
import { halo } from "shared/halopsa.ts";
export const onboard = workflow(
  { name: "onboard_user", params: { email: param.email({ required: true }), seats: param.int({ default: 1, validation: { min: 1, max: 5 } }) } },
  async ({ email, seats }, ctx) => {
    const url = await ctx.config.get("halo.url", { default: "none" });
    const token = await ctx.secrets.get("halo.token");
    ctx.log.info("via config " + (await ctx.config.get("halo.password", { default: "none" })));
    ctx.log.info("onboarding " + email + " with " + token);
    ctx.checkpoint("validated", { email });
    await ctx.variables.set("last", email);
    return { who: halo(), org: ctx.organization.name, by: ctx.startedBy, email, seats, url, tokenLength: token.length, echoed: token };
  },
);`,
  });
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/slow.ts",
    content: `import { workflow } from "bifrost";
export const slow = workflow({ name: "slow", timeoutSeconds: 60 }, () => new Promise(() => { setInterval(() => {}, 1000); }));`,
  });
  await root.modules.putModule({
    scope: orgScope(world.orgA.id),
    path: "shared/halopsa.ts",
    content: halopsa("org A"),
  });
  await root.modules.putModule({
    scope: orgScope(world.orgB.id),
    path: "shared/halopsa.ts",
    content: halopsa("org B"),
  });
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/probe-net.ts",
    content: `import { workflow } from "bifrost";
export const probe = workflow({ name: "probe_net" }, async () => {
  try { await fetch("https://api.halo.test/"); return "reached"; } catch (e) { return String(e?.message ?? e) + " | " + String(e?.cause?.message ?? ""); }
});`,
  });
  // Org A's own workflow, logging and checkpointing over several watch rounds.
  await root.modules.putModule({
    scope: orgScope(world.orgA.id),
    path: "workflows/ticker.ts",
    content: `import { workflow } from "bifrost";
export const ticker = workflow({ name: "ticker" }, async (_params, ctx) => {
  for (let i = 1; i <= 6; i++) {
    ctx.log.info("tick " + i);
    if (i % 2 === 0) ctx.checkpoint("pair " + i / 2, { i });
    await new Promise((resolve) => setTimeout(resolve, 120));
  }
  return "done";
});`,
  });
  const secretRef = { kind: { $case: "secretRef" as const, value: "halo.token" } };
  await root.config.setConfig({
    scope: orgScope(world.orgA.id),
    key: "halo.password",
    value: secretRef,
    description: "",
  });
  const hosts = (json: string) => ({ kind: { $case: "jsonValue" as const, value: json } });
  await root.config.setConfig({
    scope: orgScope(world.orgA.id),
    key: "network.hosts",
    value: hosts('["api.halo.test"]'),
    description: "",
  });

  await root.config.setConfig({
    scope: orgScope(world.orgA.id),
    key: "halo.url",
    value: { kind: { $case: "stringValue", value: "https://a.halo" } },
    description: "",
  });
  await root.secrets.setSecret({
    scope: globalScope,
    name: "halo.token",
    value: "global-secret-token",
    description: "",
  });
  await root.secrets.setSecret({
    scope: orgScope(world.orgA.id),
    name: "halo.token",
    value: "org-a-secret-token",
    description: "",
  });
  await cp.discovery.drain();

  // A runner identity and the runner's job loop, pulling from this file's stream.
  runner = await startInProcessRunner(cp, root, { name: "runner-1", heartbeat: true });
});

afterAll(async () => {
  await runner?.stop();
  await cp?.close();
});

const start = (
  key: string,
  organizationId: string,
  workflow: string,
  params: { [key: string]: unknown },
  wait = true,
) =>
  world.as(key).executions.startExecution({
    organizationId,
    workflow,
    params,
    waitForResult: wait,
    waitTimeoutSeconds: 60,
  });

describe("executions end to end: control plane → NATS → runner → sandbox", () => {
  test("a global workflow runs each organization's own override of shared/halopsa.ts, its config and secrets", async () => {
    const a = await start(world.keys.memberA, world.orgA.id, "onboard_user", { email: "x@a.test" });
    expect(a.execution?.status, JSON.stringify(a.execution?.error)).toBe(
      ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
    );
    expect(a.execution?.result).toEqual({
      who: "org A",
      org: "Org A",
      // Who started each run, as its own context says: never another run's user.
      by: { id: world.users.memberA, name: "member@a.test", email: "member@a.test" },
      email: "x@a.test",
      seats: 1,
      url: "https://a.halo",
      tokenLength: 18,
      echoed: "[redacted]",
    });
    const b = await start(world.keys.adminB, world.orgB.id, "onboard_user", {
      email: "y@b.test",
      seats: 2,
    });
    expect(b.execution?.result).toMatchObject({
      who: "org B",
      by: { id: world.users.adminB, name: "admin@b.test", email: "admin@b.test" },
      url: "none",
      tokenLength: 19,
      echoed: "[redacted]",
    });
    const c = await start(world.keys.platformAdmin, world.orgC.id, "onboard_user", {
      email: "z@c.test",
    });
    expect(c.execution?.result).toMatchObject({ who: "global", org: "Org C" });
  });

  test("a module changed behind this control plane's back (another replica, a git sync) is run by the very next execution, whatever its boot hint said", async () => {
    const before = await start(world.keys.memberA, world.orgA.id, "onboard_user", {
      email: "v1@a.test",
    });
    expect(before.execution?.result).toMatchObject({ who: "org A" });
    // Through the store, not the API: this process's boot hints do not hear of it.
    const orgA = { kind: "organization" as const, organizationId: world.orgA.id };
    await cp.stores.modules.put(systemActor, orgA, "shared/halopsa.ts", halopsa("org A v2"));
    try {
      const after = await start(world.keys.memberA, world.orgA.id, "onboard_user", {
        email: "v2@a.test",
      });
      expect(after.execution?.result).toMatchObject({ who: "org A v2" });
      const b = await start(world.keys.adminB, world.orgB.id, "onboard_user", {
        email: "v2@b.test",
      });
      expect(b.execution?.result).toMatchObject({ who: "org B" });
    } finally {
      await cp.stores.modules.put(systemActor, orgA, "shared/halopsa.ts", halopsa("org A"));
    }
  });

  test("started executions of every organization are marked dispatched once their jobs are stored, without the start waiting for it", async () => {
    const starts = await Promise.all(
      [world.orgA.id, world.orgB.id, world.orgC.id].flatMap((org) =>
        [1, 2, 3].map(() =>
          world.as(world.keys.platformAdmin).executions.startExecution({
            organizationId: org,
            workflow: "onboard_user",
            params: { email: "mark@x.test" },
            waitForResult: false,
            waitTimeoutSeconds: 0,
          }),
        ),
      ),
    );
    const ids = starts.map((s) => s.execution?.id as string);
    let unmarked = ids.length;
    for (let i = 0; i < 100 && unmarked > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const [row] = await cp.sql<{ n: number }[]>`
        select count(*)::int as n from executions
        where id = any(${ids}::uuid[]) and dispatched_at is null`;
      unmarked = row?.n ?? ids.length;
    }
    expect(unmarked).toBe(0);
  });

  test("logs, checkpoints and variables are kept, with secret values redacted", async () => {
    const a = await start(world.keys.memberA, world.orgA.id, "onboard_user", {
      email: "logs@a.test",
    });
    const { execution } = await world
      .as(world.keys.memberA)
      .executions.getExecution({ id: a.execution?.id as string });
    expect(execution?.logs.map((l) => l.message)).toContain(
      "onboarding logs@a.test with [redacted]",
    );
    expect(execution?.logs.map((l) => l.message)).toContain("via config [redacted]");
    expect(JSON.stringify(execution)).not.toContain("org-a-secret-token");
    expect(execution?.checkpoints.map((c) => [c.name, c.data])).toEqual([
      ["validated", { email: "logs@a.test" }],
    ]);
    expect(execution?.variables).toEqual({ last: "logs@a.test" });
    expect(execution?.attempt).toBe(1);
    expect(execution?.runnerId).toBe("runner-1");
  });

  test("watching an execution replays its logs and ends with the terminal status", async () => {
    const a = await start(world.keys.memberA, world.orgA.id, "onboard_user", {
      email: "watch@a.test",
    });
    const events = await world
      .as(world.keys.memberA)
      .watchExecution({ id: a.execution?.id as string });
    const kinds = events.map((e) => e.event?.$case);
    expect(kinds[kinds.length - 1]).toBe("status");
    const last = events[events.length - 1]?.event;
    expect(last?.$case === "status" && last.value.status).toBe(
      ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
    );
    const logs = events.flatMap((e) => (e.event?.$case === "log" ? [e.event.value.message] : []));
    expect(logs).toContain("onboarding watch@a.test with [redacted]");
    expect(kinds).toContain("checkpoint");
    await expectCode(
      world.as(world.keys.adminB).watchExecution({ id: a.execution?.id as string }),
      status.NOT_FOUND,
    );
  });

  test("a watch started while the execution runs follows it live to the end", async () => {
    const started = await start(
      world.keys.memberA,
      world.orgA.id,
      "onboard_user",
      { email: "live@a.test" },
      false,
    );
    const events = await world
      .as(world.keys.memberA)
      .watchExecution({ id: started.execution?.id as string });
    const statuses = events.flatMap((e) =>
      e.event?.$case === "status" ? [e.event.value.status] : [],
    );
    expect(statuses[statuses.length - 1]).toBe(ExecutionStatus.EXECUTION_STATUS_SUCCEEDED);
    expect(statuses.length).toBeGreaterThanOrEqual(1);
  });

  test("a live watch sends every log line and checkpoint once, in order, across its rounds; only to its organization", async () => {
    const started = await start(world.keys.memberA, world.orgA.id, "ticker", {}, false);
    const id = started.execution?.id as string;
    expect(started.execution?.status).toBe(ExecutionStatus.EXECUTION_STATUS_QUEUED);
    const events = await world.as(world.keys.memberA).watchExecution({ id });
    const logs = events.flatMap((e) => (e.event?.$case === "log" ? [e.event.value] : []));
    expect(logs.map((l) => l.message)).toEqual([1, 2, 3, 4, 5, 6].map((i) => `tick ${i}`));
    const sequences = logs.map((l) => BigInt(l.sequence));
    expect(sequences).toEqual([...sequences].sort((x, y) => (x < y ? -1 : 1)));
    expect(logs.every((l) => l.time instanceof Date && !Number.isNaN(l.time.getTime()))).toBe(true);
    const checkpoints = events.flatMap((e) =>
      e.event?.$case === "checkpoint" ? [[e.event.value.name, e.event.value.data]] : [],
    );
    expect(checkpoints).toEqual([
      ["pair 1", { i: 2 }],
      ["pair 2", { i: 4 }],
      ["pair 3", { i: 6 }],
    ]);
    const last = events.at(-1)?.event;
    expect(last?.$case === "status" && last.value.status).toBe(
      ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
    );
    // A replay afterwards sends the same, and GetExecution holds the same.
    const replay = await world.as(world.keys.memberA).watchExecution({ id });
    expect(replay.filter((e) => e.event?.$case === "log")).toHaveLength(6);
    const { execution } = await world.as(world.keys.memberA).executions.getExecution({ id });
    expect(execution?.logs.map((l) => l.message)).toEqual(logs.map((l) => l.message));
    expect(execution?.checkpoints).toHaveLength(3);
    // "ticker" is org A's alone: org B and an org that falls back to global have none, and
    // org B cannot see A's execution.
    await expectCode(start(world.keys.adminB, world.orgB.id, "ticker", {}), status.NOT_FOUND);
    await expectCode(
      start(world.keys.platformAdmin, world.orgC.id, "ticker", {}),
      status.NOT_FOUND,
    );
    await expectCode(world.as(world.keys.adminB).executions.getExecution({ id }), status.NOT_FOUND);
  });

  test("hosts an organization declares join the sandbox's allow list; an invalid one fails the execution naming it", async () => {
    const mod = await world
      .as(world.keys.platformAdmin)
      .modules.getModule({ scope: globalScope, path: "workflows/probe-net.ts" });
    expect(mod.module?.discoveryError).toBe("");
    const a = await start(world.keys.memberA, world.orgA.id, "probe_net", {});
    expect(a.execution?.status).toBe(ExecutionStatus.EXECUTION_STATUS_SUCCEEDED);
    expect(String(a.execution?.result)).not.toMatch(/Requires net access|permission denied/i);
    const c = await start(world.keys.platformAdmin, world.orgC.id, "probe_net", {});
    expect(String(c.execution?.result)).toMatch(/Requires net access to "api.halo.test/);
    const root = world.as(world.keys.platformAdmin);
    const orgD = (await root.organizations.createOrganization({ name: "Org D" })).organization
      ?.id as string;
    const localhost = { kind: { $case: "jsonValue" as const, value: '["localhost"]' } };
    await root.config.setConfig({
      scope: orgScope(orgD),
      key: "network.hosts",
      value: localhost,
      description: "",
    });
    const b = await start(world.keys.platformAdmin, orgD, "probe_net", {});
    expect(b.execution?.status).toBe(ExecutionStatus.EXECUTION_STATUS_FAILED);
    expect(b.execution?.error).toMatchObject({ kind: "invalid_network" });
    expect(b.execution?.error?.message).toMatch(/localhost/);
  });

  test("bad params are refused before anything runs, naming the field", async () => {
    const missing = await expectCode(
      start(world.keys.memberA, world.orgA.id, "onboard_user", {}),
      status.INVALID_ARGUMENT,
    );
    expect(missing).toMatch(/params\.email/);
    const range = await expectCode(
      start(world.keys.memberA, world.orgA.id, "onboard_user", { email: "a@b.co", seats: 9 }),
      status.INVALID_ARGUMENT,
    );
    expect(range).toMatch(/params\.seats/);
    await expectCode(
      start(world.keys.memberA, world.orgA.id, "no_such_workflow", {}),
      status.NOT_FOUND,
    );
    const oversized = { email: "a@b.co", note: "x".repeat(300_000) };
    const huge = await expectCode(
      start(world.keys.memberA, world.orgA.id, "onboard_user", oversized),
      status.INVALID_ARGUMENT,
    );
    expect(huge).toMatch(/params are \d+ bytes of JSON; at most 262144 bytes are allowed/);
    const nul = await expectCode(
      start(world.keys.memberA, world.orgA.id, "bad\u0000name", {}),
      status.INVALID_ARGUMENT,
    );
    expect(nul).toBe(
      'workflow "bad\\u0000name" must be 1–200 characters without control characters',
    );
    const api = world.as(world.keys.memberA);
    await expectCode(
      api.workflows.getWorkflow({ organizationId: world.orgA.id, name: "" }),
      status.INVALID_ARGUMENT,
    );
    const filter = {
      organizationId: world.orgA.id,
      workflow: "x\u0001",
      status: 0,
      kind: 0,
      pageSize: 0,
      pageToken: "",
    };
    await expectCode(api.executions.listExecutions(filter), status.INVALID_ARGUMENT);
    const listed = await world.as(world.keys.memberA).executions.listExecutions({
      organizationId: world.orgA.id,
      workflow: "",
      status: 0,
      kind: 0,
      pageSize: 0,
      pageToken: "",
    });
    expect(
      listed.executions?.every((e) => e.status === ExecutionStatus.EXECUTION_STATUS_SUCCEEDED),
    ).toBe(true);
  });

  test("starting an execution is audited in its organization, naming who started it", async () => {
    const started = await start(world.keys.memberA, world.orgA.id, "onboard_user", {
      email: "audited@a.test",
    });
    const id = started.execution?.id as string;
    const events = await cp.sql<
      { actor_user_id: string; organization_id: string; target_type: string; details: unknown }[]
    >`select actor_user_id, organization_id, target_type, details from audit_events
      where action = 'execution.start' and target = ${id}`;
    expect(events).toEqual([
      {
        actor_user_id: world.users.memberA,
        organization_id: world.orgA.id,
        target_type: "execution",
        details: { workflow: "onboard_user" },
      },
    ]);
  });

  test("an inactive organization's executions are refused, even for a platform admin, and none is recorded", async () => {
    const root = world.as(world.keys.platformAdmin);
    const { organization } = await root.organizations.createOrganization({ name: "Dormant" });
    const id = organization?.id as string;
    await root.organizations.updateOrganization({ id, active: false });
    const message = await expectCode(
      start(world.keys.platformAdmin, id, "onboard_user", { email: "a@b.co" }),
      status.FAILED_PRECONDITION,
    );
    expect(message).toBe(`organization "${id}" is inactive`);
    const [{ count }] = await cp.sql<[{ count: number }]>`
      select count(*)::int as count from executions where organization_id = ${id}`;
    expect(count).toBe(0);
  });

  test("organizations see only their own executions", async () => {
    const a = await start(world.keys.memberA, world.orgA.id, "onboard_user", {
      email: "mine@a.test",
    });
    await expectCode(
      world.as(world.keys.adminB).executions.getExecution({ id: a.execution?.id as string }),
      status.NOT_FOUND,
    );
    await expectCode(
      world.as(world.keys.adminB).executions.listExecutions({
        organizationId: world.orgA.id,
        workflow: "",
        status: 0,
        kind: 0,
        pageSize: 0,
        pageToken: "",
      }),
      status.PERMISSION_DENIED,
    );
    const b = await world.as(world.keys.adminB).executions.listExecutions({
      organizationId: world.orgB.id,
      workflow: "",
      status: 0,
      kind: 0,
      pageSize: 0,
      pageToken: "",
    });
    expect(b.executions?.every((e) => e.organizationId === world.orgB.id)).toBe(true);
  });

  test("cancelling a running execution stops it in its sandbox", async () => {
    const started = await start(world.keys.memberA, world.orgA.id, "slow", {}, false);
    const id = started.execution?.id as string;
    const api = world.as(world.keys.memberA);
    for (let i = 0; i < 100; i++) {
      const { execution } = await api.executions.getExecution({ id });
      if (execution?.status === ExecutionStatus.EXECUTION_STATUS_RUNNING) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await api.executions.cancelExecution({ id });
    let final = ExecutionStatus.EXECUTION_STATUS_RUNNING;
    for (let i = 0; i < 200 && final === ExecutionStatus.EXECUTION_STATUS_RUNNING; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      final = (await api.executions.getExecution({ id })).execution?.status ?? final;
    }
    expect(final).toBe(ExecutionStatus.EXECUTION_STATUS_CANCELLED);
  });

  test("a runner identity can only call RunnerService, and only with a live execution token", async () => {
    const runnerKey = (
      await world.as(world.keys.platformAdmin).identity.createApiKey({
        userId: (
          await world
            .as(world.keys.platformAdmin)
            .identity.listUsers({ organizationId: "", pageSize: 500, pageToken: "" })
        ).users?.find((u) => u.runner)?.id as string,
        name: "probe",
        expiresAt: undefined,
      })
    ).secret;
    await expectCode(
      world.as(runnerKey).modules.listModules({
        scope: orgScope(world.orgA.id),
        pathPrefix: "",
        pageSize: 0,
        pageToken: "",
      }),
      status.PERMISSION_DENIED,
    );
    const probe = connectControlPlane(cp.address, runnerKey);
    await expectCode(
      probe.executionCall({
        executionToken: "forged",
        method: "secrets.get",
        name: "halo.token",
        value: undefined,
      }),
      status.UNAUTHENTICATED,
    );
    probe.close();
    const member = connectControlPlane(cp.address, world.keys.adminA);
    await expectCode(
      member.claimExecution({
        executionId: "00000000-0000-4000-8000-000000000000",
        attempt: 1,
        runnerName: "x",
      }),
      status.PERMISSION_DENIED,
    );
    member.close();
  });

  test("a waited start is answered with the execution as its completion returned it: what a read shows, without the read", async () => {
    // Counts the store's reads of an execution (the waiter's read after a wake-up is one).
    const store = cp.stores.executions;
    const read = store.snapshot;
    const reads: string[] = [];
    store.snapshot = (id, after) => {
      reads.push(id);
      return read(id, after);
    };
    let started: Awaited<ReturnType<typeof start>>;
    try {
      // Org A's ticker logs and checkpoints over ~0.7 s, then returns.
      started = await start(world.keys.memberA, world.orgA.id, "ticker", {});
    } finally {
      store.snapshot = read;
    }
    const id = started.execution?.id as string;
    expect(reads).not.toContain(id);
    expect(started.execution?.status).toBe(ExecutionStatus.EXECUTION_STATUS_SUCCEEDED);
    expect(started.execution?.logs.map((l) => l.message)).toEqual(
      [1, 2, 3, 4, 5, 6].map((i) => `tick ${i}`),
    );
    const { execution } = await world.as(world.keys.memberA).executions.getExecution({ id });
    expect(started.execution).toEqual(execution);
  });

  test("a completion naming another execution than its token's is refused, and ends nothing", async () => {
    const runnerKey = await createRunnerKey(world.as(world.keys.platformAdmin), "completion-probe");
    const store = cp.stores.executions;
    // Recorded and claimed through the store: never published, so no runner takes it.
    const record = await store.start(systemActor, world.orgB.id, "onboard_user", {
      email: "probe@b.test",
    });
    const other = await store.start(systemActor, world.orgA.id, "onboard_user", {
      email: "other@a.test",
    });
    const claimed = await store.claim(record.id, 1, "completion-probe");
    // A claim proves its job was delivered, so it records the dispatch too.
    const [marked] = await cp.sql<{ dispatched: boolean }[]>`
      select dispatched_at is not null as dispatched from executions where id = ${record.id}`;
    expect(marked?.dispatched).toBe(true);
    const runner = connectControlPlane(cp.address, runnerKey, { retryUnavailableMs: 0 });
    const completion = (executionId: string) =>
      runner.completeExecution({
        executionToken: claimed?.token as string,
        executionId,
        status: ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
        result: "done",
        error: undefined,
      });
    try {
      expect(await expectCode(completion("not-a-uuid"), status.INVALID_ARGUMENT)).toMatch(
        /execution_id "not-a-uuid"/,
      );
      await expectCode(completion(other.id), status.UNAUTHENTICATED);
      expect((await store.get(record.id)).status).toBe("running");
      expect((await store.get(other.id)).status).toBe("queued");
      await completion(record.id);
      expect((await store.get(record.id)).status).toBe("succeeded");
    } finally {
      runner.close();
    }
  });

  test("a runner key stops working the moment it is revoked, or its identity deleted (its check is remembered briefly)", async () => {
    const root = world.as(world.keys.platformAdmin);
    const { user } = await root.identity.createUser({
      email: "short-lived@runners.test",
      displayName: "short-lived runner",
      platformAdmin: false,
      organizationId: "",
      role: 0,
      runner: true,
    });
    const newKey = async () =>
      root.identity.createApiKey({ userId: user?.id as string, name: "k", expiresAt: undefined });
    // A claim of an execution that does not exist: authenticated, and changes nothing.
    const beat = async (key: string) => {
      const runner = connectControlPlane(cp.address, key, { retryUnavailableMs: 0 });
      try {
        const answer = await runner.claimExecution({
          executionId: "00000000-0000-4000-8000-000000000000",
          attempt: 1,
          runnerName: "short-lived",
        });
        expect(answer.claimed).toBe(false);
      } finally {
        runner.close();
      }
    };
    const first = await newKey();
    await beat(first.secret);
    await beat(first.secret);
    await root.identity.revokeApiKey({ id: first.apiKey?.id as string });
    await expectCode(beat(first.secret), status.UNAUTHENTICATED);

    const second = await newKey();
    await beat(second.secret);
    await root.identity.deleteUser({ id: user?.id as string });
    await expectCode(beat(second.secret), status.UNAUTHENTICATED);
  });

  test("runners announce themselves and operators list them with capacity, load and liveness", async () => {
    const admin = connectControlPlane(cp.address, world.keys.platformAdmin);
    let runners: Awaited<ReturnType<typeof admin.listRunners>>["runners"] = [];
    for (let i = 0; i < 50 && runners.length === 0; i++) {
      runners = (await admin.listRunners({})).runners;
      if (runners.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    admin.close();
    expect(runners.map((r) => [r.name, r.capacity, r.alive])).toEqual([["runner-1", 2, true]]);
    const member = connectControlPlane(cp.address, world.keys.adminA);
    await expectCode(member.listRunners({}), status.PERMISSION_DENIED);
    member.close();
  });
});
