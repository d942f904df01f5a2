import { describe, expect, test } from "vitest";
import { latestFire } from "./scheduler.js";

const at = (iso: string) => new Date(iso).getTime();

describe("latestFire", () => {
  test("is the most recent fire at or before now, in UTC", () => {
    expect(latestFire("*/15 * * * *", at("2026-03-02T10:44:59.999Z"))).toEqual(
      new Date("2026-03-02T10:30:00.000Z"),
    );
    // A fire at exactly now is due now, not a period later.
    expect(latestFire("*/15 * * * *", at("2026-03-02T10:45:00.000Z"))).toEqual(
      new Date("2026-03-02T10:45:00.000Z"),
    );
    // Weekdays at 06:00: on a Monday before six, the latest was Friday's.
    expect(latestFire("0 6 * * mon-fri", at("2026-03-02T05:59:00.000Z"))).toEqual(
      new Date("2026-02-27T06:00:00.000Z"),
    );
    expect(latestFire("@daily", at("2026-03-02T05:59:00.000Z"))).toEqual(
      new Date("2026-03-02T00:00:00.000Z"),
    );
  });

  test("reads the expression in a time zone, daylight saving included", () => {
    // 09:00 in London is 09:00 UTC in winter and 08:00 UTC in summer (from 29 March 2026).
    expect(latestFire("0 9 * * *", at("2026-03-27T12:00:00Z"), "Europe/London")).toEqual(
      new Date("2026-03-27T09:00:00.000Z"),
    );
    expect(latestFire("0 9 * * *", at("2026-03-30T12:00:00Z"), "Europe/London")).toEqual(
      new Date("2026-03-30T08:00:00.000Z"),
    );
    expect(latestFire("0 * * * *", at("2026-03-02T10:45:00Z"), "Asia/Kolkata")).toEqual(
      new Date("2026-03-02T10:30:00.000Z"),
    );
  });

  test("is undefined for an expression cron-parser cannot read", () => {
    expect(latestFire("61 * * * *", at("2026-03-02T10:00:00.000Z"))).toBeUndefined();
    expect(latestFire("every day", at("2026-03-02T10:00:00.000Z"))).toBeUndefined();
  });
});
