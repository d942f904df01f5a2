// @ts-self-types="./meta.d.ts"

/**
 * The metadata shapes of docs/execution-contract.md: what discovery reports for each workflow,
 * param and data provider, and what the control plane stores per scope and validates
 * StartExecution params against. Pure types, shared by the Deno SDK and Node (control plane,
 * runner, local runner).
 */

/** A value that survives JSON.stringify → JSON.parse unchanged. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** The param types a workflow can declare. */
export type ParamType = "string" | "int" | "float" | "bool" | "email" | "json" | "list";

/** The types a list param's items can have. */
export type ListItemType = Exclude<ParamType, "list">;

/** Every param type, in the order messages list them. */
export const paramTypes: readonly ParamType[] = [
  "string",
  "int",
  "float",
  "bool",
  "email",
  "json",
  "list",
];

/**
 * Constraints on a param's value. Which apply depends on the type:
 * - string, email: minLength, maxLength (characters), pattern (the whole value must match),
 *   options (the value must be one of them);
 * - int, float: min, max, options;
 * - list: minLength, maxLength (number of items); min, max, pattern and options apply to
 *   each item as they would to a param of the item type;
 * - bool, json: none.
 */
export interface ParamValidation {
  min?: number;
  max?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  options?: JsonValue[];
}

/** One declared param, as discovery reports it and StartExecution validates against. */
export interface ParamMeta {
  name: string;
  type: ParamType;
  label: string;
  required: boolean;
  default?: JsonValue;
  helpText: string;
  validation?: ParamValidation;
  /** Name of a data provider whose options a form shows for this param. */
  dataProvider?: string;
  /** The type of each item, for type "list" (and only for it). */
  items?: ListItemType;
}

/** A workflow's metadata as declared in code (discovery adds where it was found). */
export interface WorkflowDefinition {
  /** Unique per scope; the key of StartExecution. */
  name: string;
  description: string;
  /** Defaults to "General". */
  category: string;
  tags: string[];
  timeoutSeconds: number | null;
  /** A cron expression, or null for no schedule. */
  schedule: string | null;
  /** Hosts the workflow may reach: "api.halo.com", "*.graph.microsoft.com", "host:443". */
  network: string[];
  params: ParamMeta[];
}

/** A workflow's metadata as discovery reports it. */
export interface WorkflowMeta extends WorkflowDefinition {
  /** The workspace path of the module declaring it, e.g. "workflows/onboard.ts". */
  module: string;
  /** The module's export holding it. */
  exportName: string;
}

/** A data provider's metadata as declared in code. */
export interface DataProviderDefinition {
  name: string;
  description: string;
  /** How long the control plane may cache its options; defaults to 300. */
  cacheTtlSeconds: number;
}

/** A data provider's metadata as discovery reports it. */
export interface DataProviderMeta extends DataProviderDefinition {
  module: string;
  exportName: string;
}

/** One option a data provider returns, for a form's select field. */
export type DataProviderOption = {
  label: string;
  value: JsonValue;
  metadata?: { [key: string]: JsonValue };
};
