// @ts-self-types="./params.d.ts"

import type { JsonValue, ParamMeta } from "./meta.js";
import { checkParamValue, describe, describeType, type ParamError } from "./param-check.js";

/**
 * Param validation, pure and runtime-neutral (no Deno or Node APIs): the control plane runs
 * it on StartExecution, the SDK runs it again inside the sandbox before calling the handler,
 * and the local runner runs it on command-line params. Import it in Node as
 * `@bifrost/sdk/params`.
 */

export type {
  DataProviderOption,
  JsonValue,
  ListItemType,
  ParamMeta,
  ParamType,
  ParamValidation,
} from "./meta.js";
export {
  checkParamValue,
  describeType,
  isEmailAddress,
  type ParamError,
} from "./param-check.js";
export { checkParamMeta } from "./param-meta.js";
export { type ParamTextResult, parseParamText } from "./param-text.js";
export { type Checked, checkOptions } from "./result-check.js";

/** The outcome of validateParams: the params with defaults applied, or every error found. */
export type ParamsValidation =
  | { ok: true; value: Record<string, JsonValue> }
  | { ok: false; errors: ParamError[] };

/**
 * Validates `input` against a workflow's declared params. Every problem is reported (not just
 * the first), each message naming the field and what would be valid. Unknown fields are
 * rejected, missing optional params take their default (or stay absent), and `null` counts as
 * missing for every type but json. The returned value holds the params in declaration order.
 */
export function validateParams(schema: readonly ParamMeta[], input: unknown): ParamsValidation {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    return {
      ok: false,
      errors: [{ field: "params", message: `params must be an object, got ${describe(input)}` }],
    };
  }
  const given = input as Record<string, unknown>;
  const errors: ParamError[] = [];
  const value: Record<string, JsonValue> = {};
  const known = new Set(schema.map((param) => param.name));
  for (const key of Object.keys(given)) {
    if (known.has(key)) continue;
    const takes = schema.length ? `takes: ${[...known].join(", ")}` : "takes no params";
    errors.push({
      field: key,
      message: `unknown param ${JSON.stringify(key)}; this workflow ${takes}`,
    });
  }
  for (const param of schema) {
    const raw = Object.hasOwn(given, param.name) ? given[param.name] : undefined;
    if (raw === undefined || (raw === null && param.type !== "json")) {
      if (param.required) {
        errors.push({
          field: param.name,
          message: `${param.name} is required: give ${describeType(param.type, param.items)}`,
        });
      } else if (param.default !== undefined) {
        value[param.name] = structuredCopy(param.default);
      }
      continue;
    }
    const problems = checkParamValue(param, raw, param.name);
    if (problems.length) errors.push(...problems);
    else value[param.name] = raw as JsonValue;
  }
  return errors.length ? { ok: false, errors } : { ok: true, value };
}

function structuredCopy(value: JsonValue): JsonValue {
  return typeof value === "object" && value !== null ? JSON.parse(JSON.stringify(value)) : value;
}
