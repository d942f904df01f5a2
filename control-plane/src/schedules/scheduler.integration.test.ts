import { ExecutionStatus } from "@bifrost/proto";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openJobQueue } from "../executions/job-queue.js";
import { createLogger } from "../log.js";
import { connectNats } from "../nats.js";
import { waitForEnd } from "../testing/execution-waits.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { type InProcessRunner, startInProcessRunner } from "../testing/in-process-runner.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";
import { type Scheduler, startScheduler } from "./scheduler.js";

// A global workflow with a schedule, overridden by org A without one (A opts out) and by org
// B with its own; org C runs the global one. The schedulers run on a clock the tests move, so
// a fire is a tick away instead of a minute; everything else is real: the database, the
// cascade, JetStream and a runner with its sandbox.

let cp: TestControlPlane;
let world: TenancyWorld;
let runner: InProcessRunner | undefined;
let nats: NatsConnection;
let clock: number;
const schedulers: Scheduler[] = [];

const report = (who: string, schedule: string | null) => `
import { param, workflow } from "bifrost";
export const report = workflow(
  { name: "report", schedule: ${JSON.stringify(schedule)}, params: { scope: param.string({ default: "all" }) } },
  (p, ctx) => ({ who: ${JSON.stringify(who)}, org: ctx.organization.id, scope: p.scope, by: ctx.startedBy }),
);`;

/** The first minute boundary after every declaration and organization of the test exists. */
let firstFire: number;
const minute = 60_000;

async function scheduler(
  options: { graceMs?: number; timer?: boolean; refreshMs?: number } = {},
): Promise<Scheduler> {
  const queue = await openJobQueue(nats, cp.dispatch, {
    maxDeliver: 3,
    ackWaitMs: 30_000,
    duplicateWindowMs: 60_000,
  });
  const started = startScheduler({
    workflows: cp.stores.workflows,
    config: cp.stores.config,
    executions: cp.stores.executions,
    queue,
    log: createLogger({ name: "scheduler-test", level: "silent" }),
    now: () => clock,
    timer: false,
    ...options,
  });
  schedulers.push(started);
  return started;
}

async function scheduledRuns() {
  return cp.sql<
    Array<{
      id: string;
      organization_id: string;
      scheduled_for: Date;
      status: string;
      started_by_user_id: string | null;
      params: unknown;
    }>
  >`select id, organization_id, scheduled_for, status, started_by_user_id, params
    from executions where scheduled_for is not null order by scheduled_for, organization_id`;
}

const ended = (id: string) => waitForEnd(world.as(world.keys.platformAdmin), id, 30_000);

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  nats = await connectNats(cp.natsUrl);
  const root = world.as(world.keys.platformAdmin);
  const path = "workflows/report.ts";
  await root.modules.putModule({
    scope: globalScope,
    path,
    content: report("global", "* * * * *"),
  });
  await root.modules.putModule({
    scope: orgScope(world.orgA.id),
    path,
    content: report("org A", null),
  });
  // B's own schedule: the minute after the first fire, every hour.
  firstFire = Math.ceil((Date.now() + 1) / minute) * minute;
  const bMinute = new Date(firstFire + minute).getUTCMinutes();
  await root.modules.putModule({
    scope: orgScope(world.orgB.id),
    path,
    content: report("org B", `${bMinute} * * * *`),
  });
  await cp.discovery.drain();
  runner = await startInProcessRunner(cp, root, { name: "schedule-runner" });
});

afterAll(async () => {
  for (const s of schedulers) await s.stop();
  await runner?.stop();
  await nats?.close();
  await cp?.close();
});

describe("workflow schedules", () => {
  test("a global schedule fires for each organization that does not override it, once, whichever replica ticks", async () => {
    clock = firstFire + 1_000;
    const [one, two] = [await scheduler(), await scheduler()];
    // Both replicas tick at the fire: one run, for org C only (A opted out, B's minute is later).
    expect((await one.tick()) + (await two.tick())).toBe(1);
    expect(await one.tick()).toBe(0);
    const runs = await scheduledRuns();
    expect(runs.map((r) => [r.organization_id, r.scheduled_for.getTime()])).toEqual([
      [world.orgC.id, firstFire],
    ]);
    const [run] = runs;
    expect(run?.started_by_user_id).toBeNull();
    expect(run?.params).toEqual({ scope: "all" });

    const execution = await ended(run?.id as string);
    expect(execution.status).toBe(ExecutionStatus.EXECUTION_STATUS_SUCCEEDED);
    // The workflow's context says the platform started it, by its schedule.
    expect(execution.result).toEqual({
      who: "global",
      org: world.orgC.id,
      scope: "all",
      by: { id: null, name: "schedule", email: null },
    });
    expect(execution.scheduledFor?.getTime()).toBe(firstFire);
    expect(execution.startedByUserId).toBe("");

    const [audit] = await cp.sql<Array<{ actor_user_id: string | null; details: unknown }>>`
      select actor_user_id, details from audit_events
      where action = 'execution.start' and target = ${run?.id as string}`;
    expect(audit).toEqual({
      actor_user_id: null,
      details: { workflow: "report", scheduledFor: new Date(firstFire).toISOString() },
    });
  });

  test("an organization's override runs on its own schedule; the global one goes on for the rest", async () => {
    clock = firstFire + minute + 500;
    expect(await (await scheduler()).tick()).toBe(2);
    const runs = (await scheduledRuns()).filter(
      (r) => r.scheduled_for.getTime() === firstFire + minute,
    );
    expect(runs.map((r) => r.organization_id).sort()).toEqual(
      [world.orgB.id, world.orgC.id].sort(),
    );
    const results = await Promise.all(runs.map(async (r) => (await ended(r.id)).result));
    const by = { id: null, name: "schedule", email: null };
    expect(results).toContainEqual({ who: "org B", org: world.orgB.id, scope: "all", by });
    expect(results).toContainEqual({ who: "global", org: world.orgC.id, scope: "all", by });
    // Org A never ran: its override declares no schedule.
    expect((await scheduledRuns()).some((r) => r.organization_id === world.orgA.id)).toBe(false);
  });

  test("a fire waits while the schedule's previous run is queued, starts late within the grace, and is skipped after it", async () => {
    // No runner: a run stays queued.
    await runner?.stop();
    runner = undefined;
    const replica = await scheduler({ graceMs: 30_000 });
    const third = firstFire + 2 * minute;
    clock = third + 1_000;
    expect(await replica.tick()).toBe(1);
    const [queued] = (await scheduledRuns()).filter((r) => r.scheduled_for.getTime() === third);
    expect(queued?.status).toBe("queued");

    // The next fire finds it still queued, and waits.
    clock = third + minute + 1_000;
    expect(await replica.tick()).toBe(0);
    await world
      .as(world.keys.platformAdmin)
      .executions.cancelExecution({ id: queued?.id as string });
    // Once it has ended, the waiting fire starts, late, as the fire it is.
    clock = third + minute + 20_000;
    expect(await replica.tick()).toBe(1);
    const late = (await scheduledRuns()).filter(
      (r) => r.scheduled_for.getTime() === third + minute,
    );
    expect(late.map((r) => r.organization_id)).toEqual([world.orgC.id]);

    // Still queued at the next fire, cancelled only after that fire's grace: skipped.
    clock = third + 2 * minute + 1_000;
    expect(await replica.tick()).toBe(0);
    await world
      .as(world.keys.platformAdmin)
      .executions.cancelExecution({ id: late[0]?.id as string });
    clock = third + 2 * minute + 31_000;
    expect(await replica.tick()).toBe(0);
    expect(
      (await scheduledRuns()).filter((r) => r.scheduled_for.getTime() === third + 2 * minute),
    ).toEqual([]);
  });

  test("an inactive organization's schedules do not fire; a new organization's do, from its creation on", async () => {
    const root = world.as(world.keys.platformAdmin);
    await root.organizations.updateOrganization({ id: world.orgC.id, active: false });
    const { organization } = await root.organizations.createOrganization({ name: "Org New" });
    const newId = organization?.id as string;
    const replica = await scheduler();
    // A fire before the organization existed is never due for it.
    clock = Date.now();
    expect(await replica.tick()).toBe(0);
    const before = new Set((await scheduledRuns()).map((r) => r.id));
    const next = Math.ceil((Date.now() + 1) / minute) * minute;
    clock = next + 1_000;
    expect(await replica.tick()).toBe(1);
    const runs = (await scheduledRuns()).filter((r) => !before.has(r.id));
    expect(runs.map((r) => [r.organization_id, r.scheduled_for.getTime()])).toEqual([
      [newId, next],
    ]);
    await root.organizations.updateOrganization({ id: world.orgC.id, active: true });
  });

  test("left to its timer, a scheduler starts a due fire by itself, and stops when told", async () => {
    const root = world.as(world.keys.platformAdmin);
    const { organization } = await root.organizations.createOrganization({ name: "Org Timer" });
    const id = organization?.id as string;
    clock = Math.ceil((Date.now() + 1) / minute) * minute + 1_000;
    const timed = await scheduler({ timer: true, refreshMs: 100 });
    let runs: Array<{ scheduled_for: Date }> = [];
    for (let i = 0; i < 100 && runs.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      runs = (await scheduledRuns()).filter((r) => r.organization_id === id);
    }
    expect(runs.map((r) => r.scheduled_for.getTime())).toEqual([clock - 1_000]);
    await timed.stop();
  });
});
