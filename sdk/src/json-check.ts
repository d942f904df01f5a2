// @ts-self-types="./json-check.d.ts"

import type { JsonValue } from "./meta.js";

/**
 * JSON checks for values crossing the sandbox boundary. Results, checkpoints and variables
 * must be JSON exactly (a Date that silently became a string, or a NaN that became null, is a
 * bug the author should see); log data is made loggable instead, because a log line should
 * never fail a workflow. Pure: no Deno or Node APIs.
 */

/** Where a value stops being JSON: `message` says what ("result.users[2].created is a Date"). */
export interface JsonProblem {
  path: string;
  message: string;
  /** How to fix it, when there is an obvious way. */
  hint?: string;
}

/** Deepest nesting accepted; deeper values are reported rather than overflowing the stack. */
export const maxJsonDepth = 500;

/**
 * Finds the first part of `value` that JSON cannot represent exactly, naming its path from
 * `root` ("result", "result.users[2].created"). Allowed: null, booleans, strings, finite
 * numbers, arrays without holes or undefined, and plain objects (undefined properties are
 * omitted, as JSON.stringify does). Shared references are fine; cycles are not.
 */
export function findNonJson(value: unknown, root: string): JsonProblem | undefined {
  return visit(value, root, [], [], 0);
}

function visit(
  value: unknown,
  path: string,
  ancestors: object[],
  ancestorPaths: string[],
  depth: number,
): JsonProblem | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      if (Number.isFinite(value)) return undefined;
      return { path, message: `${path} is ${value}`, hint: "JSON has no NaN or Infinity" };
    case "bigint":
      return { path, message: `${path} is a BigInt`, hint: "convert it with String() or Number()" };
    case "undefined":
      return { path, message: `${path} is undefined`, hint: "use null" };
    case "function":
      return { path, message: `${path} is a function` };
    case "symbol":
      return { path, message: `${path} is a symbol` };
  }
  if (value === null) return undefined;
  const object = value as object;
  const kind = nonPlainKind(object);
  if (kind)
    return { path, message: `${path} is ${kind.what}`, ...(kind.hint ? { hint: kind.hint } : {}) };
  const ancestor = ancestors.indexOf(object);
  if (ancestor !== -1) {
    return { path, message: `${path} refers back to ${ancestorPaths[ancestor]}, a cycle` };
  }
  if (depth >= maxJsonDepth) {
    return { path, message: `${path} is nested more than ${maxJsonDepth} levels deep` };
  }
  ancestors.push(object);
  ancestorPaths.push(path);
  try {
    if (Array.isArray(object)) {
      for (let index = 0; index < object.length; index++) {
        if (!(index in object)) {
          return {
            path: `${path}[${index}]`,
            message: `${path}[${index}] is an empty slot`,
            hint: "use null",
          };
        }
        const problem = visit(
          object[index],
          `${path}[${index}]`,
          ancestors,
          ancestorPaths,
          depth + 1,
        );
        if (problem) return problem;
      }
      return undefined;
    }
    for (const [key, item] of Object.entries(object)) {
      if (item === undefined) continue;
      const problem = visit(item, pathOf(path, key), ancestors, ancestorPaths, depth + 1);
      if (problem) return problem;
    }
    return undefined;
  } finally {
    ancestors.pop();
    ancestorPaths.pop();
  }
}

/** The path of an object property: `a.b` for identifiers, `a["x-y"]` otherwise. */
export function pathOf(path: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)
    ? `${path}.${key}`
    : `${path}[${JSON.stringify(key)}]`;
}

function nonPlainKind(object: object): { what: string; hint?: string } | undefined {
  if (Array.isArray(object)) return undefined;
  const proto = Object.getPrototypeOf(object);
  if (proto === Object.prototype || proto === null) return undefined;
  if (object instanceof Date) return { what: "a Date", hint: "convert it with date.toISOString()" };
  if (object instanceof Map)
    return { what: "a Map", hint: "convert it with Object.fromEntries(map)" };
  if (object instanceof Set) return { what: "a Set", hint: "convert it with [...set]" };
  if (object instanceof Promise) return { what: "a Promise", hint: "did you forget an await?" };
  if (object instanceof Error) return { what: `an Error (${object.name}: ${object.message})` };
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
    return {
      what: `a ${object.constructor.name}`,
      hint: "convert bytes to base64 or an array of numbers",
    };
  }
  const name = typeof proto?.constructor === "function" ? proto.constructor.name : "";
  return {
    what: name ? `a ${name} instance` : "an object with a custom prototype",
    hint: "use a plain object",
  };
}

/** The full message for a problem: what is wrong, then how to fix it. */
export function describeJsonProblem(problem: JsonProblem, advice: string): string {
  return `${problem.message}; ${advice}${problem.hint ? ` (${problem.hint})` : ""}`;
}

/**
 * Makes any value loggable as JSON without throwing: Dates become ISO strings, BigInts and
 * non-finite numbers strings, Errors `{ name, message }`, Maps objects, Sets arrays, class
 * instances their own properties; functions and symbols are dropped; cycles and too-deep
 * values become "[cycle]" and "[too deep]".
 */
export function toLoggable(value: unknown): JsonValue | undefined {
  return loggable(value, [], 0);
}

function loggable(value: unknown, ancestors: object[], depth: number): JsonValue | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
      return String(value);
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
  }
  if (value === null) return null;
  const object = value as object;
  if (ancestors.includes(object)) return "[cycle]";
  if (depth >= 20) return "[too deep]";
  if (object instanceof Date)
    return Number.isNaN(object.getTime()) ? "Invalid Date" : object.toISOString();
  if (object instanceof Error) return { name: object.name, message: object.message };
  ancestors.push(object);
  try {
    if (object instanceof Map) return loggable(Object.fromEntries(object), ancestors, depth + 1);
    if (object instanceof Set || Array.isArray(object)) {
      return [...(object as Iterable<unknown>)].map(
        (item) => loggable(item, ancestors, depth + 1) ?? null,
      );
    }
    const out: { [key: string]: JsonValue } = {};
    for (const [key, item] of Object.entries(object)) {
      const converted = loggable(item, ancestors, depth + 1);
      if (converted !== undefined) out[key] = converted;
    }
    return out;
  } finally {
    ancestors.pop();
  }
}
