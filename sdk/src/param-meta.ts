// @ts-self-types="./param-meta.d.ts"

import type { ListItemType, ParamMeta, ParamType, ParamValidation } from "./meta.js";
import { paramTypes } from "./meta.js";
import { checkParamValue } from "./param-check.js";

/**
 * Declaration-time checks of a param's metadata. workflow() runs them so a bad declaration
 * fails the module's load with a clear reason; the control plane can run them on what
 * discovery reports, since discovery output comes from tenant code and is not trusted.
 */

/** Param names: a letter or "_", then letters, digits and "_"; at most 64 characters. */
export const paramNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const rulesByType: Record<ParamType, readonly (keyof ParamValidation)[]> = {
  string: ["minLength", "maxLength", "pattern", "options"],
  email: ["minLength", "maxLength", "pattern", "options"],
  int: ["min", "max", "options"],
  float: ["min", "max", "options"],
  bool: [],
  json: [],
  list: ["minLength", "maxLength"],
};

/** The validation keys that apply to items of a list, by item type. */
const itemRulesByType: Record<ListItemType, readonly (keyof ParamValidation)[]> = {
  string: ["pattern", "options"],
  email: ["pattern", "options"],
  int: ["min", "max", "options"],
  float: ["min", "max", "options"],
  bool: [],
  json: [],
};

/**
 * Returns every problem with a param declaration (empty when valid), each naming the param:
 * name shape, type, which validation keys apply to the type, their ranges and consistency,
 * the pattern compiling, options and the default being valid values of the param.
 */
export function checkParamMeta(meta: ParamMeta): string[] {
  const where = `param ${JSON.stringify(meta.name)}`;
  if (typeof meta.name !== "string" || !paramNamePattern.test(meta.name)) {
    return [
      `${where}: the name must start with a letter or "_" and use only letters, digits and "_" (at most 64 characters)`,
    ];
  }
  if (!paramTypes.includes(meta.type)) {
    return [`${where}: type ${JSON.stringify(meta.type)} is not one of ${paramTypes.join(", ")}`];
  }
  const problems: string[] = [];
  if (typeof meta.label !== "string" || meta.label.trim() === "")
    problems.push(`${where}: label must be a non-empty string`);
  if (typeof meta.helpText !== "string") problems.push(`${where}: helpText must be a string`);
  if (typeof meta.required !== "boolean") problems.push(`${where}: required must be true or false`);
  if (
    meta.dataProvider !== undefined &&
    (typeof meta.dataProvider !== "string" || meta.dataProvider === "")
  ) {
    problems.push(`${where}: dataProvider must be the name of a data provider`);
  }
  if (meta.type === "list") {
    const items: string = meta.items ?? "string";
    if (!paramTypes.includes(items as ParamType) || items === "list") {
      problems.push(
        `${where}: items must be one of ${paramTypes.filter((t) => t !== "list").join(", ")}`,
      );
      return problems;
    }
  } else if (meta.items !== undefined) {
    problems.push(`${where}: items applies only to list params`);
  }
  problems.push(...checkValidation(meta, where));
  if (problems.length) return problems;
  const rules = meta.validation ?? {};
  if (rules.options !== undefined) {
    const item: ParamMeta = {
      ...meta,
      type: meta.type === "list" ? (meta.items ?? "string") : meta.type,
    };
    delete item.validation;
    delete item.items;
    rules.options.forEach((option, index) => {
      for (const problem of checkParamValue(item, option, `options[${index}]`)) {
        problems.push(`${where}: ${problem.message}`);
      }
    });
  }
  if (meta.default !== undefined) {
    if (meta.required) {
      problems.push(`${where}: a required param cannot have a default; remove one of them`);
    }
    for (const problem of checkParamValue(meta, meta.default, "default")) {
      problems.push(`${where}: ${problem.message}`);
    }
  }
  return problems;
}

function checkValidation(meta: ParamMeta, where: string): string[] {
  const rules = meta.validation;
  if (rules === undefined) return [];
  if (rules === null || typeof rules !== "object")
    return [`${where}: validation must be an object`];
  const allowed = new Set(rulesByType[meta.type]);
  if (meta.type === "list")
    for (const key of itemRulesByType[meta.items ?? "string"]) allowed.add(key);
  const problems: string[] = [];
  for (const key of Object.keys(rules) as (keyof ParamValidation)[]) {
    if (rules[key] === undefined) continue;
    if (!allowed.has(key)) {
      const list = [...allowed].join(", ") || "nothing";
      problems.push(
        `${where}: validation.${key} does not apply to a ${describeKind(meta)} param (it takes ${list})`,
      );
    }
  }
  for (const key of ["min", "max"] as const) {
    const value = rules[key];
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value))) {
      problems.push(`${where}: validation.${key} must be a finite number`);
    }
  }
  for (const key of ["minLength", "maxLength"] as const) {
    const value = rules[key];
    if (
      value !== undefined &&
      (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
    ) {
      problems.push(`${where}: validation.${key} must be a whole number of at least 0`);
    }
  }
  if (typeof rules.min === "number" && typeof rules.max === "number" && rules.min > rules.max) {
    problems.push(
      `${where}: validation.min ${rules.min} is greater than validation.max ${rules.max}`,
    );
  }
  if (
    typeof rules.minLength === "number" &&
    typeof rules.maxLength === "number" &&
    rules.minLength > rules.maxLength
  ) {
    problems.push(
      `${where}: validation.minLength ${rules.minLength} is greater than validation.maxLength ${rules.maxLength}`,
    );
  }
  if (rules.pattern !== undefined) {
    try {
      new RegExp(rules.pattern, "u");
    } catch (error) {
      problems.push(
        `${where}: validation.pattern ${JSON.stringify(rules.pattern)} is not a valid regular expression (${(error as Error).message})`,
      );
    }
  }
  if (
    rules.options !== undefined &&
    (!Array.isArray(rules.options) || rules.options.length === 0)
  ) {
    problems.push(`${where}: validation.options must be a non-empty list`);
  }
  return problems;
}

function describeKind(meta: ParamMeta): string {
  return meta.type === "list" ? `list of ${meta.items ?? "string"}` : meta.type;
}
