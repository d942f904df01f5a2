import { invalidArgument } from "../errors.js";
import type { ConfigValue } from "./config-value.js";

/**
 * The config key naming the time zone an organization's workflow schedules are read in, with
 * the cascade: the organization's own, else the global one, else UTC. An MSP's customers live
 * in different zones; "0 9 * * 1" then means 09:00 on Monday where each of them is, daylight
 * saving included.
 */
export const scheduleTimezoneKey = "schedule.timezone";

/** Whether `zone` is a time zone this runtime knows: an IANA name ("Europe/London") or "UTC". */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The zone a `schedule.timezone` value names; undefined when it names none (or is absent). */
export function scheduleTimeZoneOf(value: ConfigValue | undefined): string | undefined {
  return value?.type === "string" && isTimeZone(value.value) ? value.value : undefined;
}

/**
 * Refuses, at write time, a value the platform could not use for a key it reads itself, so a
 * mistake is an error for whoever makes it rather than a schedule silently read in UTC.
 */
export function checkPlatformSetting(key: string, value: ConfigValue): void {
  if (key === scheduleTimezoneKey && (value.type !== "string" || !isTimeZone(value.value))) {
    throw invalidArgument(
      `config "${key}" must be a string naming a time zone like "Europe/London", "America/New_York" or "UTC", got ${value.type} ${JSON.stringify(value.value)}`,
    );
  }
}
