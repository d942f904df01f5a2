import { CronExpressionParser } from "cron-parser";
import { type ConfigStore, effectiveValueOf } from "../config-store/config-store.js";
import { scheduleTimeZoneOf, scheduleTimezoneKey } from "../config-store/platform-keys.js";
import { publishAndMark } from "../executions/dispatch.js";
import type { ExecutionStore } from "../executions/execution-store.js";
import type { JobQueue } from "../executions/job-queue.js";
import type { Logger } from "../log.js";
import type { ScheduledWorkflow, WorkflowStore } from "../workflows/workflow-store.js";

/** Fires workflows' cron schedules (see `startScheduler`). */
export interface Scheduler {
  /** Starts every run that is due now; returns how many this call started. */
  tick(): Promise<number>;
  stop(): Promise<void>;
}

/** How late a fire may still start (a control plane restarting, the previous run still going). */
export const defaultScheduleGraceMs = 5 * 60_000;

/** How often the schedules are read again: new, changed or removed declarations, organizations. */
export const defaultScheduleRefreshMs = 10_000;

/**
 * The most recent time `schedule` (five-field cron, read in `timeZone`) fires at or before
 * `now`, or undefined when the expression cannot be read. Discovery checks every schedule
 * already (sdk meta-check); cron-parser is what computes the times, daylight saving included.
 */
export function latestFire(schedule: string, now: number, timeZone = "UTC"): Date | undefined {
  try {
    // prev() is strictly before its start: from now + 1 ms, a fire at exactly now counts.
    return CronExpressionParser.parse(schedule, { currentDate: new Date(now + 1), tz: timeZone })
      .prev()
      .toDate();
  } catch {
    return undefined;
  }
}

/** The first time after `now` that `schedule` fires, read in `timeZone`; undefined if unreadable. */
export function nextFire(schedule: string, now: number, timeZone = "UTC"): number | undefined {
  try {
    return CronExpressionParser.parse(schedule, { currentDate: new Date(now), tz: timeZone })
      .next()
      .getTime();
  } catch {
    return undefined;
  }
}

/** A scheduled workflow of one organization, with the time zone its schedule is read in. */
type Entry = ScheduledWorkflow & { timeZone: string };

/**
 * Starts, for every active organization, the runs its effective workflows' schedules fire
 * (`WorkflowStore.scheduled`: a global schedule runs for every organization that does not
 * override the workflow; an override runs on its own schedule, or on none). Schedules are
 * cron expressions read in the organization's time zone (config "schedule.timezone", with the
 * cascade; UTC without one), and a run gets the params' defaults.
 *
 * Every replica runs a scheduler; each fire starts one run whichever replica gets there
 * first (a unique index on the fire time, migration 0012). A fire is due from its time until
 * `graceMs` after it: one missed while no control plane was up starts late, within the grace,
 * and only the latest fire of a schedule is ever started, so a long outage starts one run,
 * not one per missed fire. A fire waits while the schedule's previous run is still queued or
 * running, and is skipped once its grace has passed or the next fire comes: runs of one
 * schedule never overlap or pile up.
 *
 * The scheduler sleeps until the next fire of any schedule, or until `refreshMs` (when it
 * reads the schedules again and retries fires that waited), whichever is sooner.
 */
export function startScheduler(deps: {
  workflows: Pick<WorkflowStore, "scheduled">;
  config: Pick<ConfigStore, "effectiveValueColumn">;
  executions: Pick<ExecutionStore, "startScheduled" | "markDispatched">;
  queue: Pick<JobQueue, "publish">;
  log: Logger;
  graceMs?: number;
  refreshMs?: number;
  /** The clock (tests move it); default Date.now. */
  now?: () => number;
  /** false: no timer, only explicit `tick()` calls (tests). */
  timer?: boolean;
}): Scheduler {
  const graceMs = deps.graceMs ?? defaultScheduleGraceMs;
  const refreshMs = deps.refreshMs ?? defaultScheduleRefreshMs;
  const now = deps.now ?? Date.now;
  let entries: Entry[] = [];
  let readAt = Number.NEGATIVE_INFINITY;
  /** Fires this replica is done with (started, or found started): key → fire time. */
  const done = new Map<string, number>();
  /** Schedules cron-parser could not read, and time zones it did not know: warned once. */
  const unreadable = new Set<string>();
  const warnOnce = (key: string, fields: object, message: string) => {
    if (unreadable.has(key)) return;
    unreadable.add(key);
    deps.log.warn(fields, message);
  };

  async function read(): Promise<Entry[]> {
    const rows = await deps.workflows.scheduled<{ time_zone: unknown }>((organizationId) =>
      deps.config.effectiveValueColumn(organizationId, scheduleTimezoneKey, "time_zone"),
    );
    return rows.map(({ alongside, ...entry }) => {
      const value = effectiveValueOf(alongside.time_zone);
      const timeZone = scheduleTimeZoneOf(value);
      if (value && !timeZone) {
        // Refused on write (platform-keys.ts); only a value set before that, or a zone this
        // runtime no longer knows, gets here.
        warnOnce(
          `zone\0${entry.organizationId}`,
          { organizationId: entry.organizationId, value: value.value },
          `config "${scheduleTimezoneKey}" is not a time zone; schedules are read in UTC`,
        );
      }
      return { ...entry, timeZone: timeZone ?? "UTC" };
    });
  }
  let round: Promise<number> = Promise.resolve(0);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function fire(entry: Entry, at: Date): Promise<boolean> {
    const { organizationId, workflow } = entry;
    const key = `${organizationId}\0${workflow.name}\0${at.getTime()}`;
    if (done.has(key)) return false;
    const outcome = await deps.executions.startScheduled(organizationId, workflow, at);
    if (outcome === "not_now") return false;
    done.set(key, at.getTime());
    if (outcome === "fired") return false;
    const record = outcome.started;
    deps.log.info(
      { executionId: record.id, organizationId, workflow: workflow.name, scheduledFor: at },
      "scheduled run started",
    );
    try {
      await publishAndMark(deps, record);
    } catch (error) {
      // Still queued and undispatched: the dispatch retry publishes it (dispatch-retry.ts).
      deps.log.warn({ err: error, executionId: record.id }, "dispatch deferred");
    }
    return true;
  }

  async function tick(): Promise<number> {
    const at = now();
    if (at - readAt >= refreshMs) {
      entries = await read();
      readAt = at;
    }
    for (const [key, time] of done) if (at - time > graceMs) done.delete(key);
    let started = 0;
    // Per distinct expression and zone, not per organization: a global schedule is one for
    // every organization of a zone.
    const latestOf = new Map<string, Date | undefined>();
    for (const entry of entries) {
      const schedule = entry.workflow.metadata.schedule as string;
      const key = `${entry.timeZone}\0${schedule}`;
      if (!latestOf.has(key)) latestOf.set(key, latestFire(schedule, at, entry.timeZone));
      const latest = latestOf.get(key);
      if (!latest) {
        warnOnce(
          `cron\0${entry.workflow.declarationId}`,
          { workflow: entry.workflow.name, schedule },
          "schedule cannot be read; it never fires",
        );
        continue;
      }
      if (latest < entry.since || at - latest.getTime() > graceMs) continue;
      try {
        if (await fire(entry, latest)) started += 1;
      } catch (error) {
        deps.log.warn(
          { err: error, organizationId: entry.organizationId, workflow: entry.workflow.name },
          "scheduled run could not start",
        );
      }
    }
    return started;
  }

  /** Sleeps until the next fire of any schedule, or the next read, whichever is first. */
  function arm() {
    if (stopped || deps.timer === false) return;
    const at = now();
    let wake = readAt + refreshMs;
    const seen = new Set<string>();
    for (const { timeZone, workflow } of entries) {
      const schedule = workflow.metadata.schedule as string;
      const key = `${timeZone}\0${schedule}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const next = nextFire(schedule, at, timeZone);
      if (next !== undefined && next < wake) wake = next;
    }
    timer = setTimeout(run, Math.max(0, wake - at));
    timer.unref();
  }

  function run() {
    round = round
      .then(tick)
      .catch((error: unknown) => {
        deps.log.error({ err: error }, "scheduler round failed");
        return 0;
      })
      .finally(arm);
  }

  if (deps.timer !== false) run();
  return {
    tick: () => {
      const result = round.then(tick);
      round = result.catch(() => 0);
      return result;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round.catch(() => 0);
    },
  };
}
