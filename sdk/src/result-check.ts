// @ts-self-types="./result-check.d.ts"

import { describeJsonProblem, findNonJson, pathOf } from "./json-check.js";
import type { DataProviderOption, JsonValue } from "./meta.js";

/**
 * Checks of what handlers return, before it crosses the sandbox boundary. A workflow's result
 * must be JSON exactly; a data provider's must be a list of `{ label, value, metadata? }`.
 * Pure: no Deno or Node APIs.
 */

/** The value to send, or a message naming the offending path. */
export type Checked<T> = { value: T } | { problem: string };

/**
 * Checks a workflow result. `undefined` (a handler that returns nothing) becomes null;
 * anything else must be JSON ("result.users[2].created is a Date; return JSON (…)").
 */
export function checkResult(value: unknown): Checked<JsonValue> {
  if (value === undefined) return { value: null };
  const problem = findNonJson(value, "result");
  if (problem) return { problem: describeJsonProblem(problem, "return JSON") };
  return { value: value as JsonValue };
}

const optionShape = "options are { label: string, value: JSON, metadata?: object }";

/** Checks a data provider's options. */
export function checkOptions(value: unknown): Checked<DataProviderOption[]> {
  if (!Array.isArray(value)) return { problem: `result must be a list of options; ${optionShape}` };
  for (const [index, option] of value.entries()) {
    const path = `result[${index}]`;
    if (option === null || typeof option !== "object" || Array.isArray(option)) {
      return { problem: `${path} is not an object; ${optionShape}` };
    }
    const extra = Object.keys(option).filter(
      (key) => !["label", "value", "metadata"].includes(key),
    );
    if (extra.length)
      return { problem: `${pathOf(path, extra[0] ?? "")} is not allowed; ${optionShape}` };
    if (typeof option.label !== "string")
      return { problem: `${path}.label must be a string; ${optionShape}` };
    if (option.value === undefined) return { problem: `${path}.value is missing; ${optionShape}` };
    const metadata = option.metadata;
    if (
      metadata !== undefined &&
      (metadata === null || typeof metadata !== "object" || Array.isArray(metadata))
    ) {
      return { problem: `${path}.metadata must be an object; ${optionShape}` };
    }
    const problem = findNonJson(option, path);
    if (problem) return { problem: describeJsonProblem(problem, "options hold JSON") };
  }
  return { value: value as DataProviderOption[] };
}
