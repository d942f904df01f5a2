import type { ConfigValue as ProtoConfigValue } from "@bifrost/proto";
import { invalidArgument } from "../errors.js";

/** A typed config value as stored: its type and a JSON value of that type. */
export type ConfigValue =
  | { type: "string"; value: string }
  | { type: "int"; value: string }
  | { type: "bool"; value: boolean }
  | { type: "json"; value: unknown }
  | { type: "secret_ref"; value: string };

/** Longest string or JSON config value accepted, in bytes. */
export const maxConfigValueBytes = 64 * 1024;

const keyPattern = /^[A-Za-z][A-Za-z0-9_.-]{0,199}$/;

/** Checks a config key or secret name: a letter, then letters, digits, "_", "-", "."; ≤ 200. */
export function validateConfigKey(key: string, field = "key"): string {
  if (!key) throw invalidArgument(`${field} is required`);
  if (!keyPattern.test(key)) {
    throw invalidArgument(
      `${field} ${JSON.stringify(key.slice(0, 80))} must start with a letter and use only letters, digits, "_", "-" and "." (at most 200 characters)`,
    );
  }
  return key;
}

/** True when a string anywhere in a JSON value (key or value) contains NUL, which jsonb rejects. */
function containsNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (Array.isArray(value)) return value.some(containsNul);
  if (value !== null && typeof value === "object") {
    return Object.entries(value).some(([key, item]) => key.includes("\u0000") || containsNul(item));
  }
  return false;
}

/** Checks a free-text description: PostgreSQL text cannot store NUL characters. */
export function validateDescription(description: string, field = "description"): string {
  if (description.includes("\u0000")) {
    throw invalidArgument(`${field} must not contain NUL characters`);
  }
  return description;
}

/** Converts and validates a wire value; `field` names it in errors. */
export function configValueFromProto(
  value: ProtoConfigValue | undefined,
  field = "value",
): ConfigValue {
  const kind = value?.kind;
  if (!kind) {
    throw invalidArgument(
      `${field} is required: set one of string_value, int_value, bool_value, json_value, secret_ref`,
    );
  }
  switch (kind.$case) {
    case "stringValue":
      if (Buffer.byteLength(kind.value) > maxConfigValueBytes) {
        throw invalidArgument(`${field}.string_value is larger than ${maxConfigValueBytes} bytes`);
      }
      if (kind.value.includes("\u0000")) {
        throw invalidArgument(`${field}.string_value must not contain NUL characters`);
      }
      return { type: "string", value: kind.value };
    case "intValue":
      if (!/^-?\d+$/.test(kind.value))
        throw invalidArgument(`${field}.int_value "${kind.value}" is not an integer`);
      return { type: "int", value: BigInt(kind.value).toString() };
    case "boolValue":
      return { type: "bool", value: kind.value };
    case "jsonValue": {
      if (Buffer.byteLength(kind.value) > maxConfigValueBytes) {
        throw invalidArgument(`${field}.json_value is larger than ${maxConfigValueBytes} bytes`);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(kind.value);
      } catch (error) {
        throw invalidArgument(
          `${field}.json_value ${JSON.stringify(kind.value.slice(0, 60))} is not valid JSON: ${(error as Error).message}`,
        );
      }
      if (containsNul(parsed)) {
        throw invalidArgument(
          `${field}.json_value ${JSON.stringify(kind.value.slice(0, 60))} must not contain NUL ("\\u0000") in any string`,
        );
      }
      return { type: "json", value: parsed };
    }
    case "secretRef":
      return { type: "secret_ref", value: validateConfigKey(kind.value, `${field}.secret_ref`) };
  }
}

/** Converts a stored value to its wire form. */
export function configValueToProto(value: ConfigValue): ProtoConfigValue {
  switch (value.type) {
    case "string":
      return { kind: { $case: "stringValue", value: value.value } };
    case "int":
      return { kind: { $case: "intValue", value: value.value } };
    case "bool":
      return { kind: { $case: "boolValue", value: value.value } };
    case "json":
      return { kind: { $case: "jsonValue", value: JSON.stringify(value.value) } };
    case "secret_ref":
      return { kind: { $case: "secretRef", value: value.value } };
  }
}

/** Reassembles a stored row's (value_type, value) into a ConfigValue. */
export function configValueFromRow(type: string, value: unknown): ConfigValue {
  switch (type) {
    case "int":
      return { type: "int", value: String(value) };
    case "bool":
      return { type: "bool", value: value === true };
    case "json":
      return { type: "json", value };
    case "secret_ref":
      return { type: "secret_ref", value: String(value) };
    default:
      return { type: "string", value: String(value) };
  }
}
