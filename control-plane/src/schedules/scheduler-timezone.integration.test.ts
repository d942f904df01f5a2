import type { ConfigValue } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openJobQueue } from "../executions/job-queue.js";
import { createLogger } from "../log.js";
import { connectNats } from "../nats.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { expectCode, globalScope, orgScope } from "../testing/wire.js";
import { type Scheduler, startScheduler } from "./scheduler.js";

// One global hourly schedule ("0 * * * *"), read in each organization's time zone: the global
// scope sets Asia/Kolkata (UTC+5:30, no daylight saving), org B its own UTC, orgs A and C
// have none of their own. Minute 0 in Kolkata is minute 30 in UTC, so the same schedule fires
// at :30 UTC for A and C and at :00 UTC for B. No runner: only which runs start is checked.

let cp: TestControlPlane;
let world: TenancyWorld;
let nats: NatsConnection;
let scheduler: Scheduler;
let clock: number;
const hour = 3_600_000;

const str = (value: string): ConfigValue => ({ kind: { $case: "stringValue", value } });

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  nats = await connectNats(cp.natsUrl);
  const root = world.as(world.keys.platformAdmin);
  await root.modules.putModule({
    scope: globalScope,
    path: "workflows/hourly.ts",
    content: `import { workflow } from "bifrost";
export const hourly = workflow({ name: "hourly", schedule: "0 * * * *" }, () => "ok");`,
  });
  await cp.discovery.drain();
  const set = (scope: typeof globalScope, value: string) =>
    root.config.setConfig({ scope, key: "schedule.timezone", value: str(value), description: "" });
  await set(globalScope, "Asia/Kolkata");
  await set(orgScope(world.orgB.id), "UTC");
  scheduler = startScheduler({
    workflows: cp.stores.workflows,
    config: cp.stores.config,
    executions: cp.stores.executions,
    queue: await openJobQueue(nats, cp.dispatch, {
      maxDeliver: 3,
      ackWaitMs: 30_000,
      duplicateWindowMs: 60_000,
    }),
    log: createLogger({ name: "scheduler-test", level: "silent" }),
    now: () => clock,
    timer: false,
  });
});

afterAll(async () => {
  await scheduler?.stop();
  await nats?.close();
  await cp?.close();
});

async function runsAt(time: number): Promise<string[]> {
  const rows = await cp.sql<Array<{ organization_id: string }>>`
    select organization_id from executions where scheduled_for = ${new Date(time)}
    order by organization_id`;
  return rows.map((r) => r.organization_id);
}

describe("schedules in the organization's time zone", () => {
  test("the same schedule fires at each organization's own local time, by the config cascade", async () => {
    // The first full UTC hour after every declaration, organization and setting exists.
    const utcHour = Math.ceil((Date.now() + 1) / hour) * hour;
    clock = utcHour + 1_000;
    expect(await scheduler.tick()).toBe(1);
    expect(await runsAt(utcHour)).toEqual([world.orgB.id]);

    clock = utcHour + hour / 2 + 1_000;
    expect(await scheduler.tick()).toBe(2);
    expect(await runsAt(utcHour + hour / 2)).toEqual([world.orgA.id, world.orgC.id].sort());
  });

  test("the API says when a scheduled workflow next runs for each organization, in its zone", async () => {
    const now = Date.now();
    const nextUtcHour = Math.ceil((now + 1) / hour) * hour;
    // Minute 0 in Kolkata: the next UTC time at :30.
    const nextKolkataHour =
      Math.floor(now / hour) * hour + hour / 2 > now
        ? Math.floor(now / hour) * hour + hour / 2
        : Math.floor(now / hour) * hour + (3 * hour) / 2;
    for (const [key, organizationId, at, zone] of [
      [world.keys.adminB, world.orgB.id, nextUtcHour, "UTC"],
      [world.keys.memberA, world.orgA.id, nextKolkataHour, "Asia/Kolkata"],
      [world.keys.platformAdmin, world.orgC.id, nextKolkataHour, "Asia/Kolkata"],
    ] as const) {
      const api = world.as(key);
      const got = await api.workflows.getWorkflow({ organizationId, name: "hourly" });
      expect([got.nextRunAt?.getTime(), got.scheduleTimeZone]).toEqual([at, zone]);
      const { workflows } = await api.workflows.listEffectiveWorkflows({ organizationId });
      const listed = workflows.find((w) => w.workflow?.name === "hourly");
      expect([listed?.nextRunAt?.getTime(), listed?.scheduleTimeZone]).toEqual([at, zone]);
    }
  });

  test("an organization's own zone replaces the global one for it alone, from the next read", async () => {
    const root = world.as(world.keys.platformAdmin);
    await root.config.setConfig({
      scope: orgScope(world.orgA.id),
      key: "schedule.timezone",
      value: str("UTC"),
      description: "",
    });
    // Runs of the last test are still queued (no runner): end them, so no fire waits.
    await cp.sql`update executions set status = 'cancelled', finished_at = now()
      where scheduled_for is not null and status = 'queued'`;
    const utcHour = Math.ceil((clock + 1) / hour) * hour;
    clock = utcHour + 11_000; // past the 10 s read interval: the new setting is read
    expect(await scheduler.tick()).toBe(2);
    expect(await runsAt(utcHour)).toEqual([world.orgA.id, world.orgB.id].sort());
  });

  test("a value that is not a time zone is refused on write, naming it, and nothing is stored", async () => {
    const admin = world.as(world.keys.adminA);
    for (const value of [
      str("Mars/Olympus"),
      str("+05:30"),
      { kind: { $case: "intValue", value: "5" } } as ConfigValue,
    ]) {
      const message = await expectCode(
        admin.config.setConfig({
          scope: orgScope(world.orgA.id),
          key: "schedule.timezone",
          value,
          description: "",
        }),
        status.INVALID_ARGUMENT,
      );
      expect(message).toMatch(/config "schedule\.timezone" must be a string naming a time zone/);
      expect(message).toContain(JSON.stringify(value.kind?.value));
    }
    const { entry } = await admin.config.getConfig({
      scope: orgScope(world.orgA.id),
      key: "schedule.timezone",
    });
    expect(entry?.value).toEqual(str("UTC"));
  });
});
