// @ts-self-types="./meta-check.d.ts"

import type { DataProviderDefinition, ParamMeta, WorkflowDefinition } from "./meta.js";
import { checkParamMeta } from "./param-meta.js";

/**
 * Checks of workflow and data provider metadata. workflow() and dataProvider() run them when a
 * module declares one (so a bad declaration fails the module's load with every reason), and
 * the control plane can run them on discovery output, which tenant code could forge.
 * Pure: no Deno or Node APIs.
 */

/** Workflow and data provider names: a letter, then letters, digits, "_", "-", "."; ≤ 100. */
export const declarationNamePattern = /^[A-Za-z][A-Za-z0-9_.-]{0,99}$/;

/** Longest timeout a workflow may declare: one day. */
export const maxTimeoutSeconds = 86_400;

/** Thrown by workflow() and dataProvider() for an invalid declaration; lists every problem. */
export class DefinitionError extends Error {
  readonly problems: readonly string[];

  constructor(what: string, problems: readonly string[]) {
    super(`${what} is not valid: ${problems.join("; ")}`);
    this.name = "DefinitionError";
    this.problems = problems;
  }
}

/** Every problem with a workflow's metadata (empty when valid), params included. */
export function checkWorkflowDefinition(definition: WorkflowDefinition): string[] {
  const problems = checkName(definition.name, "workflow");
  const text = (value: unknown, field: string, max: number, allowEmpty: boolean) => {
    if (typeof value !== "string" || value.length > max || (!allowEmpty && value.trim() === "")) {
      problems.push(
        `${field} must be ${allowEmpty ? "a" : "a non-empty"} string of at most ${max} characters`,
      );
    }
  };
  text(definition.description, "description", 2000, true);
  text(definition.category, "category", 100, false);
  if (!Array.isArray(definition.tags) || definition.tags.length > 20) {
    problems.push("tags must be a list of at most 20 strings");
  } else {
    for (const [index, tag] of definition.tags.entries()) text(tag, `tags[${index}]`, 50, false);
  }
  const timeout = definition.timeoutSeconds;
  if (
    timeout !== null &&
    (!Number.isSafeInteger(timeout) || timeout < 1 || timeout > maxTimeoutSeconds)
  ) {
    problems.push(
      `timeoutSeconds must be a whole number from 1 to ${maxTimeoutSeconds}, got ${timeout}`,
    );
  }
  if (definition.schedule !== null) {
    problems.push(...checkCron(definition.schedule));
    // A scheduled run has no one to give it params: it gets the defaults, nothing else.
    for (const param of Array.isArray(definition.params) ? definition.params : []) {
      if (param?.required) {
        problems.push(
          `param ${JSON.stringify(param.name)} is required, but the workflow has a schedule: a scheduled run gets only the params' defaults (make it optional, with a default if it needs a value)`,
        );
      }
    }
  }
  if (!Array.isArray(definition.network)) {
    problems.push('network must be a list of host names like "api.example.com"');
  } else {
    for (const host of definition.network) problems.push(...checkNetworkHost(host));
  }
  problems.push(...checkParams(definition.params));
  return problems;
}

function checkParams(params: readonly ParamMeta[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const param of params) {
    if (seen.has(param.name))
      problems.push(`param ${JSON.stringify(param.name)} is declared twice`);
    seen.add(param.name);
    problems.push(...checkParamMeta(param));
  }
  return problems;
}

/** Every problem with a data provider's metadata (empty when valid). */
export function checkDataProviderDefinition(definition: DataProviderDefinition): string[] {
  const problems = checkName(definition.name, "data provider");
  if (typeof definition.description !== "string" || definition.description.length > 2000) {
    problems.push("description must be a string of at most 2000 characters");
  }
  const ttl = definition.cacheTtlSeconds;
  if (!Number.isSafeInteger(ttl) || ttl < 0 || ttl > maxTimeoutSeconds) {
    problems.push(
      `cacheTtlSeconds must be a whole number from 0 to ${maxTimeoutSeconds}, got ${ttl}`,
    );
  }
  return problems;
}

function checkName(name: unknown, what: string): string[] {
  if (typeof name === "string" && declarationNamePattern.test(name)) return [];
  return [
    `${what} name ${JSON.stringify(name)} must start with a letter and use only letters, digits, "_", "-" and "." (at most 100 characters)`,
  ];
}

const hostPattern =
  /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(:(\d{1,5}))?$/;

/**
 * Problems with one `network` entry: a host name ("api.example.com"), a wildcard subdomain
 * ("*.example.com") or either with a port ("api.example.com:8443"), in lowercase, with no
 * scheme or path. These become the sandbox's --allow-net list.
 */
export function checkNetworkHost(host: unknown): string[] {
  const match = typeof host === "string" && host.length <= 253 ? hostPattern.exec(host) : null;
  const port = match?.[6] === undefined ? undefined : Number(match[6]);
  if (match && host !== "*" && (port === undefined || (port >= 1 && port <= 65535))) return [];
  return [
    `network host ${JSON.stringify(host)} must be a lowercase host name like "api.example.com", "*.example.com" or "api.example.com:8443", without a scheme or path`,
  ];
}

const cronFields = [
  { name: "minute", min: 0, max: 59, names: [] as string[] },
  { name: "hour", min: 0, max: 23, names: [] },
  { name: "day of month", min: 1, max: 31, names: [] },
  {
    name: "month",
    min: 1,
    max: 12,
    names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
  },
  { name: "day of week", min: 0, max: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] },
];
const cronMacros = [
  "@yearly",
  "@annually",
  "@monthly",
  "@weekly",
  "@daily",
  "@midnight",
  "@hourly",
];

/**
 * Problems with a cron schedule: five fields (minute hour day-of-month month day-of-week),
 * each `*`, a value, a range `a-b`, a step `*\/n` or `a-b/n`, or a comma list of those;
 * months and weekdays may be names (jan, mon). Also @hourly, @daily, @weekly, @monthly, @yearly.
 */
export function checkCron(schedule: unknown): string[] {
  const usage = `schedule ${JSON.stringify(schedule)} must be a cron expression of five fields (minute hour day-of-month month day-of-week), like "0 6 * * 1-5"`;
  if (typeof schedule !== "string") return [usage];
  if (cronMacros.includes(schedule.trim())) return [];
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5) return [usage];
  const problems: string[] = [];
  fields.forEach((field, index) => {
    const spec = cronFields[index];
    if (spec && !field.split(",").every((part) => isCronPart(part, spec))) {
      problems.push(
        `${usage}: the ${spec.name} field ${JSON.stringify(field)} is not valid (${spec.min}-${spec.max})`,
      );
    }
  });
  return problems;
}

function isCronPart(part: string, spec: { min: number; max: number; names: string[] }): boolean {
  const [range, step, extra] = part.split("/");
  if (extra !== undefined || range === undefined) return false;
  if (step !== undefined && !/^[1-9]\d*$/.test(step)) return false;
  if (range === "*") return true;
  const bounds = range.split("-");
  if (bounds.length > 2) return false;
  const values = bounds.map((bound) => cronValue(bound, spec));
  if (values.some((value) => value === undefined)) return false;
  return values.length === 1 || (values[0] as number) <= (values[1] as number);
}

function cronValue(
  text: string,
  spec: { min: number; max: number; names: string[] },
): number | undefined {
  const named = spec.names.indexOf(text.toLowerCase());
  if (named !== -1) return spec.min + named;
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value >= spec.min && value <= spec.max ? value : undefined;
}
