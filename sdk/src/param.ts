// @ts-self-types="./param.d.ts"

import type { JsonValue, ListItemType, ParamMeta, ParamType } from "./meta.js";
import { checkParamMeta } from "./param-meta.js";

/**
 * Param declarations: `param.string({ label, required, default, helpText, validation,
 * dataProvider })` and friends. Each returns a Param whose type carries the value type and
 * whether the handler always gets a value, so `workflow()` can infer the handler's params:
 * required → T, with a default → T, optional without default → T | undefined. Options that
 * list `validation.options` narrow T to those values.
 */

declare const valueType: unique symbol;
declare const presenceType: unique symbol;

/** Whether the handler always receives a value for a param. */
export type Presence = "required" | "defaulted" | "optional";

/** What a param builder records; workflow() adds the name (the key in `params`). */
export interface ParamDeclaration {
  readonly type: ParamType;
  readonly items?: ListItemType;
  readonly options: Readonly<Record<string, unknown>>;
}

/** A declared param. `T` and `P` exist for the compiler only. */
export interface Param<T = unknown, P extends Presence = Presence> {
  readonly declaration: ParamDeclaration;
  readonly [valueType]?: T;
  readonly [presenceType]?: P;
}

interface BaseOptions<T> {
  /** Shown in forms; defaults to the param name in words ("first_name" → "First name"). */
  label?: string;
  /** Defaults to false. A required param cannot have a default. */
  required?: boolean;
  default?: T;
  helpText?: string;
  /** Name of the data provider whose options a form offers for this param. */
  dataProvider?: string;
}

/** Options of string and email params. `pattern` must match the whole value. */
export interface StringOptions extends BaseOptions<string> {
  validation?: {
    minLength?: number;
    maxLength?: number;
    pattern?: string;
    options?: readonly string[];
  };
}
/** Options of int and float params. */
export interface NumberOptions extends BaseOptions<number> {
  validation?: { min?: number; max?: number; options?: readonly number[] };
}
/** Options of bool params. */
export interface BoolOptions extends BaseOptions<boolean> {}
/** Options of json params (any JSON value). */
export interface JsonOptions extends BaseOptions<JsonValue> {}
/** Options of list params: `items` is the item type (default "string"); lengths count items. */
export interface ListOptions extends BaseOptions<readonly JsonValue[]> {
  items?: ListItemType;
  validation?: {
    minLength?: number;
    maxLength?: number;
    min?: number;
    max?: number;
    pattern?: string;
    options?: readonly JsonValue[];
  };
}

type PresenceOf<O> = O extends { required: true }
  ? "required"
  : O extends { default: unknown }
    ? "defaulted"
    : "optional";

type Narrow<O, T> = O extends { validation: { options: readonly (infer U extends T)[] } } ? U : T;

interface ItemValues {
  string: string;
  email: string;
  int: number;
  float: number;
  bool: boolean;
  json: JsonValue;
}

type ListItemOf<O> = O extends { items: infer I extends ListItemType } ? ItemValues[I] : string;

/** The value type of a declared param. */
export type ParamValue<X> = X extends Param<infer T, Presence> ? T : never;

/** The params object a handler receives for a `params` declaration. */
export type ParamsOf<D> = Simplify<
  {
    -readonly [K in keyof D as D[K] extends Param<unknown, "optional"> ? never : K]: ParamValue<
      D[K]
    >;
  } & {
    -readonly [K in keyof D as D[K] extends Param<unknown, "optional"> ? K : never]?:
      | ParamValue<D[K]>
      | undefined;
  }
>;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

function declare<T, P extends Presence>(
  type: ParamType,
  options: object | undefined,
  items?: ListItemType,
): Param<T, P> {
  const declaration: ParamDeclaration = {
    type,
    ...(items ? { items } : {}),
    options: { ...(options ?? {}) },
  };
  return Object.freeze({ declaration });
}

/** The param builders. */
export const param = {
  string<const O extends StringOptions>(options?: O): Param<Narrow<O, string>, PresenceOf<O>> {
    return declare("string", options);
  },
  /** A string that must look like name@example.com. */
  email<const O extends StringOptions>(options?: O): Param<Narrow<O, string>, PresenceOf<O>> {
    return declare("email", options);
  },
  /** A whole number (a safe integer). */
  int<const O extends NumberOptions>(options?: O): Param<Narrow<O, number>, PresenceOf<O>> {
    return declare("int", options);
  },
  /** A finite number. */
  float<const O extends NumberOptions>(options?: O): Param<Narrow<O, number>, PresenceOf<O>> {
    return declare("float", options);
  },
  bool<const O extends BoolOptions>(options?: O): Param<boolean, PresenceOf<O>> {
    return declare("bool", options);
  },
  /** Any JSON value. */
  json<const O extends JsonOptions>(options?: O): Param<JsonValue, PresenceOf<O>> {
    return declare("json", options);
  },
  /** A list of `items` (default "string"). */
  list<const O extends ListOptions>(options?: O): Param<Narrow<O, ListItemOf<O>>[], PresenceOf<O>> {
    const items = (options as ListOptions | undefined)?.items ?? "string";
    return declare("list", options && omit(options, "items"), items);
  },
};

function omit(options: object, key: string): object {
  const { [key]: _omitted, ...rest } = options as Record<string, unknown>;
  return rest;
}

const optionKeys = new Set([
  "label",
  "required",
  "default",
  "helpText",
  "validation",
  "dataProvider",
]);

/**
 * Turns a declaration into the ParamMeta of the contract, filling in the defaults (label from
 * the name, required false, helpText ""). Returns the problems instead when the declaration is
 * not valid (unknown option keys included: Deno does not type-check at run time).
 */
export function toParamMeta(
  name: string,
  value: unknown,
): { meta: ParamMeta } | { problems: string[] } {
  const declaration = (value as Partial<Param> | null)?.declaration;
  if (!declaration) {
    return {
      problems: [
        `param ${JSON.stringify(name)} must be declared with param.string(), param.int(), …`,
      ],
    };
  }
  const { options } = declaration;
  const unknown = Object.keys(options).filter((key) => !optionKeys.has(key));
  if (unknown.length) {
    const list = unknown.map((key) => JSON.stringify(key)).join(", ");
    return {
      problems: [
        `param ${JSON.stringify(name)}: unknown option ${list}; options are ${[...optionKeys].join(", ")}`,
      ],
    };
  }
  const meta: ParamMeta = {
    name,
    type: declaration.type,
    label: (options.label as string | undefined) ?? labelOf(name),
    required: (options.required as boolean | undefined) ?? false,
    helpText: (options.helpText as string | undefined) ?? "",
    ...(options.default !== undefined ? { default: options.default as JsonValue } : {}),
    ...(options.validation !== undefined
      ? { validation: options.validation as ParamMeta["validation"] & object }
      : {}),
    ...(options.dataProvider !== undefined ? { dataProvider: options.dataProvider as string } : {}),
    ...(declaration.items ? { items: declaration.items } : {}),
  };
  const problems = checkParamMeta(meta);
  return problems.length ? { problems } : { meta };
}

/** "first_name" / "firstName" → "First name". */
export function labelOf(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/_+/g, " ")
    .trim()
    .toLowerCase();
  return words ? words[0]?.toUpperCase() + words.slice(1) : name;
}
