// @ts-self-types="./param-check.d.ts"

import { findNonJson } from "./json-check.js";
import type { JsonValue, ListItemType, ParamMeta, ParamType, ParamValidation } from "./meta.js";

/**
 * Checks of one param value against its declared type and validation, shared by
 * validateParams (call time) and checkParamMeta (declaration time: defaults and options).
 * Pure: no Deno or Node APIs.
 */

/** One invalid field: `field` is the param name, or `name[i]` for a list item. */
export interface ParamError {
  field: string;
  message: string;
}

/**
 * Checks one value against a param's type and validation; `field` names it in messages.
 * Returns the problems found (empty when valid).
 */
export function checkParamValue(param: ParamMeta, value: unknown, field: string): ParamError[] {
  if (param.type !== "list") return checkScalar(param.type, param.validation, value, field);
  if (!Array.isArray(value)) {
    return [error(field, `must be ${describeType("list", param.items)}, got ${describe(value)}`)];
  }
  const rules = param.validation ?? {};
  const problems: ParamError[] = [];
  if (rules.minLength !== undefined && value.length < rules.minLength) {
    problems.push(
      error(field, `must have at least ${count(rules.minLength, "item")}, got ${value.length}`),
    );
  }
  if (rules.maxLength !== undefined && value.length > rules.maxLength) {
    problems.push(
      error(field, `must have at most ${count(rules.maxLength, "item")}, got ${value.length}`),
    );
  }
  const { minLength: _min, maxLength: _max, ...itemRules } = rules;
  value.forEach((item, index) => {
    problems.push(...checkScalar(param.items ?? "string", itemRules, item, `${field}[${index}]`));
  });
  return problems;
}

function checkScalar(
  type: ListItemType,
  rules: ParamValidation | undefined,
  value: unknown,
  field: string,
): ParamError[] {
  const wrongType = error(field, `must be ${describeType(type)}, got ${describe(value)}`);
  switch (type) {
    case "string":
    case "email":
      if (typeof value !== "string") return [wrongType];
      if (type === "email" && !isEmailAddress(value)) return [wrongType];
      return checkString(rules, value, field);
    case "int":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) return [wrongType];
      return checkNumber(rules, value, field);
    case "float":
      if (typeof value !== "number" || !Number.isFinite(value)) return [wrongType];
      return checkNumber(rules, value, field);
    case "bool":
      return typeof value === "boolean" ? [] : [wrongType];
    case "json": {
      const problem = findNonJson(value, field);
      return problem ? [error(field, `must be JSON, but ${problem.message}`)] : [];
    }
  }
}

function checkString(
  rules: ParamValidation | undefined,
  value: string,
  field: string,
): ParamError[] {
  const problems: ParamError[] = [];
  if (rules?.minLength !== undefined && value.length < rules.minLength) {
    problems.push(
      error(
        field,
        `must be at least ${count(rules.minLength, "character")} long, got ${value.length}`,
      ),
    );
  }
  if (rules?.maxLength !== undefined && value.length > rules.maxLength) {
    problems.push(
      error(
        field,
        `must be at most ${count(rules.maxLength, "character")} long, got ${value.length}`,
      ),
    );
  }
  if (rules?.pattern !== undefined && !new RegExp(`^(?:${rules.pattern})$`, "u").test(value)) {
    problems.push(error(field, `must match the pattern ${rules.pattern}, got ${describe(value)}`));
  }
  return problems.concat(checkOptions(rules, value, field));
}

function checkNumber(
  rules: ParamValidation | undefined,
  value: number,
  field: string,
): ParamError[] {
  const problems: ParamError[] = [];
  if (rules?.min !== undefined && value < rules.min) {
    problems.push(error(field, `must be at least ${rules.min}, got ${value}`));
  }
  if (rules?.max !== undefined && value > rules.max) {
    problems.push(error(field, `must be at most ${rules.max}, got ${value}`));
  }
  return problems.concat(checkOptions(rules, value, field));
}

function checkOptions(
  rules: ParamValidation | undefined,
  value: JsonValue,
  field: string,
): ParamError[] {
  const options = rules?.options;
  if (!options || options.some((option) => sameJson(option, value))) return [];
  const allowed = options.map((option) => JSON.stringify(option)).join(", ");
  return [error(field, `must be one of ${allowed}, got ${describe(value)}`)];
}

const emailPattern =
  /^[^\s@"<>()[\]\\,;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

/** True for an address of the shape name@example.com (no display names, no IP literals). */
export function isEmailAddress(value: string): boolean {
  return value.length <= 254 && emailPattern.test(value);
}

/** How messages name what a type accepts: "an integer", "a list of email addresses". */
export function describeType(type: ParamType, items?: ListItemType): string {
  switch (type) {
    case "string":
      return "a string";
    case "int":
      return "an integer";
    case "float":
      return "a finite number";
    case "bool":
      return "true or false";
    case "email":
      return "an email address like name@example.com";
    case "json":
      return "a JSON value";
    case "list":
      return `a list of ${pluralOf(items ?? "string")}`;
  }
}

function pluralOf(type: ListItemType): string {
  const plural: Record<ListItemType, string> = {
    string: "strings",
    int: "integers",
    float: "numbers",
    bool: "booleans (true or false)",
    email: "email addresses",
    json: "JSON values",
  };
  return plural[type];
}

/** A short description of a received value for messages: `"abc"`, `2.5`, `a list`, `an object`. */
export function describe(value: unknown): string {
  if (typeof value === "string") {
    const text = JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
    return value.length === 0 ? "an empty string" : text;
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null)
    return String(value);
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

function error(field: string, message: string): ParamError {
  return { field, message: `${field} ${message}` };
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
