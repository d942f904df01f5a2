// @ts-self-types="./param-text.d.ts"

import type { JsonValue, ListItemType, ParamMeta } from "./meta.js";
import { describe, describeType } from "./param-check.js";

/**
 * Turning text into a typed param value, for the local runner's `--param name=value` (and any
 * other text source: query strings, CSV imports). The result still goes through
 * validateParams, which checks ranges, patterns and options. Pure: no Deno or Node APIs.
 */

/** A parsed value, or why the text is not a value of the param's type. */
export type ParamTextResult = { ok: true; value: JsonValue } | { ok: false; message: string };

/**
 * Parses `text` per the param's declared type: int "3", float "2.5", bool "true"/"false"
 * (also yes/no, 1/0), json any JSON text, list either a JSON array or comma-separated items of
 * the item type ("a@b.c, d@e.f"); string and email take the text as it is.
 */
export function parseParamText(param: ParamMeta, text: string): ParamTextResult {
  if (param.type !== "list") return parseItem(param.type, text, param.name);
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    const parsed = parseJson(trimmed, param.name);
    if (!parsed.ok) return parsed;
    if (!Array.isArray(parsed.value))
      return fail(param.name, describeType("list", param.items), text);
    return parsed;
  }
  if (trimmed === "") return { ok: true, value: [] };
  const items: JsonValue[] = [];
  const parts = trimmed.split(",");
  for (const [index, part] of parts.entries()) {
    const item = parseItem(param.items ?? "string", part.trim(), `${param.name}[${index}]`);
    if (!item.ok) return item;
    items.push(item.value);
  }
  return { ok: true, value: items };
}

function parseItem(type: ListItemType, text: string, field: string): ParamTextResult {
  switch (type) {
    case "string":
    case "email":
      return { ok: true, value: text };
    case "int":
      return /^[+-]?\d+$/.test(text.trim())
        ? number(text, field, type)
        : fail(field, describeType(type), text);
    case "float":
      return text.trim() === "" ? fail(field, describeType(type), text) : number(text, field, type);
    case "bool": {
      const lower = text.trim().toLowerCase();
      if (["true", "yes", "1"].includes(lower)) return { ok: true, value: true };
      if (["false", "no", "0"].includes(lower)) return { ok: true, value: false };
      return fail(field, "true or false", text);
    }
    case "json":
      return parseJson(text, field);
  }
}

function number(text: string, field: string, type: "int" | "float"): ParamTextResult {
  const value = Number(text.trim());
  if (!Number.isFinite(value) || (type === "int" && !Number.isSafeInteger(value))) {
    return fail(field, describeType(type), text);
  }
  return { ok: true, value };
}

function parseJson(text: string, field: string): ParamTextResult {
  try {
    return { ok: true, value: JSON.parse(text) as JsonValue };
  } catch (error) {
    return { ok: false, message: `${field} must be JSON text: ${(error as Error).message}` };
  }
}

function fail(field: string, expected: string, text: string): ParamTextResult {
  return { ok: false, message: `${field} must be ${expected}, got ${describe(text)}` };
}
