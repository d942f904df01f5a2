// @ts-self-types="./workflow.d.ts"

import type { Context } from "./context.js";
import type {
  DataProviderDefinition,
  DataProviderOption,
  JsonValue,
  ParamMeta,
  WorkflowDefinition,
} from "./meta.js";
import {
  checkDataProviderDefinition,
  checkWorkflowDefinition,
  DefinitionError,
} from "./meta-check.js";
import { type Param, type ParamsOf, toParamMeta } from "./param.js";

/**
 * `workflow()` and `dataProvider()`: a handler plus its metadata, as a value a module exports.
 * Declaring validates the metadata at once, so a bad declaration fails the module's load
 * with every reason (discovery reports it on the module) instead of failing a later run.
 */

const brand = Symbol.for("bifrost.declaration");
const declaredAtKey = Symbol.for("bifrost.declaredAt");

/**
 * The URL of the module that called workflow() or dataProvider(), from the stack (undefined
 * when the stack does not say), worked out when first asked. Discovery uses it to report a
 * re-exported declaration under the module that declares it rather than under whichever
 * module it met first. Capturing the stack is cheap; formatting it and scanning the text
 * cost about half a millisecond per declaration, which an execution never needs.
 */
function callerUrl(): () => string | undefined {
  const error = new Error();
  let url: string | undefined | null = null;
  return () => {
    if (url !== null) return url;
    const urls = [...(error.stack ?? "").matchAll(/((?:file|https?):\/\/[^\s()]+?):\d+:\d+/g)].map(
      (match) => match[1],
    );
    // The first frame is this function, so its URL is the SDK's: skip every frame from it.
    url = urls.find((frame) => frame !== urls[0]);
    return url;
  };
}

/** Where a declaration was made (see callerUrl), if known. */
export function declaredAt(
  declaration: Workflow<never, unknown> | DataProvider,
): string | undefined {
  return (declaration as { [declaredAtKey]?: () => string | undefined })[declaredAtKey]?.();
}

/** What `workflow()` takes: the contract's WorkflowMeta fields, most optional. */
export interface WorkflowOptions<D> {
  /** Unique per scope; what StartExecution names. */
  name: string;
  description?: string;
  /** Defaults to "General". */
  category?: string;
  tags?: readonly string[];
  /** Wall-clock limit in seconds (the platform's default when absent). */
  timeoutSeconds?: number | null;
  /** Cron expression (minute hour day-of-month month day-of-week). */
  schedule?: string | null;
  /** Hosts the workflow may reach: "api.halo.com", "*.graph.microsoft.com", "host:8443". */
  network?: readonly string[];
  /** Param declarations by name: `{ email: param.email({ required: true }) }`. */
  params?: D;
}

/** A declared workflow: export it from a module under any name. */
export interface Workflow<P = Record<string, unknown>, R = unknown> {
  readonly kind: "workflow";
  readonly meta: Readonly<WorkflowDefinition>;
  readonly handler: (params: P, ctx: Context) => R | Promise<R>;
}

/** What `dataProvider()` takes. */
export interface DataProviderOptions {
  name: string;
  description?: string;
  /** How long forms may cache the options; defaults to 300. */
  cacheTtlSeconds?: number;
}

/**
 * What the caller of a data provider passes (GetDataProviderOptions' `inputs`, e.g. the
 * values a form already has): a JSON object, empty when none were given. Not validated
 * against any schema: check what you read.
 */
export type DataProviderInputs = Readonly<Record<string, JsonValue>>;

/** A declared data provider: a named list of options for form fields. */
export interface DataProvider {
  readonly kind: "dataProvider";
  readonly meta: Readonly<DataProviderDefinition>;
  readonly handler: (
    ctx: Context,
    inputs: DataProviderInputs,
  ) => DataProviderOption[] | Promise<DataProviderOption[]>;
}

/** The param declarations `workflow()` accepts. */
export type ParamDeclarations = Record<string, Param>;

/**
 * Declares a workflow. The handler's params are inferred from `params`; its result must be
 * JSON (plain objects, arrays, strings, finite numbers, booleans, null).
 *
 * @throws DefinitionError listing every problem with the metadata.
 */
export function workflow<D extends ParamDeclarations = Record<never, Param>, R = unknown>(
  options: WorkflowOptions<D>,
  handler: (params: ParamsOf<D>, ctx: Context) => R | Promise<R>,
): Workflow<ParamsOf<D>, Awaited<R>> {
  const name = typeof options?.name === "string" ? options.name : String(options?.name);
  const what = `workflow ${JSON.stringify(name)}`;
  const optionProblems = unknownKeys(options, [
    "name",
    "description",
    "category",
    "tags",
    "timeoutSeconds",
    "schedule",
    "network",
    "params",
  ]);
  const paramProblems: string[] = [];
  const params: ParamMeta[] = [];
  for (const [paramName, declared] of Object.entries(options?.params ?? {})) {
    const converted = toParamMeta(paramName, declared);
    if ("meta" in converted) params.push(converted.meta);
    else paramProblems.push(...converted.problems);
  }
  const meta: WorkflowDefinition = {
    name,
    description: options?.description ?? "",
    category: options?.category ?? "General",
    tags: copyList(options?.tags),
    timeoutSeconds: options?.timeoutSeconds ?? null,
    schedule: options?.schedule ?? null,
    network: copyList(options?.network),
    params,
  };
  const problems = [...checkWorkflowDefinition(meta), ...optionProblems, ...paramProblems];
  if (typeof handler !== "function") problems.push("the handler must be a function");
  if (problems.length) throw new DefinitionError(what, problems);
  return Object.freeze({
    [brand]: "workflow",
    [declaredAtKey]: callerUrl(),
    kind: "workflow" as const,
    meta: deepFreeze(meta),
    handler: handler as (params: ParamsOf<D>, ctx: Context) => Awaited<R> | Promise<Awaited<R>>,
  });
}

/**
 * Declares a data provider: a handler returning `{ label, value, metadata? }` options for form
 * fields whose params name it in `dataProvider`.
 *
 * @throws DefinitionError listing every problem with the metadata.
 */
export function dataProvider(
  options: DataProviderOptions,
  handler: (
    ctx: Context,
    inputs: DataProviderInputs,
  ) => DataProviderOption[] | Promise<DataProviderOption[]>,
): DataProvider {
  const meta: DataProviderDefinition = {
    name: options?.name,
    description: options?.description ?? "",
    cacheTtlSeconds: options?.cacheTtlSeconds ?? 300,
  };
  const problems = unknownKeys(options, ["name", "description", "cacheTtlSeconds"]);
  if (typeof handler !== "function") problems.push("the handler must be a function");
  problems.push(...checkDataProviderDefinition(meta));
  if (problems.length)
    throw new DefinitionError(`data provider ${JSON.stringify(meta.name)}`, problems);
  return Object.freeze({
    [brand]: "dataProvider",
    [declaredAtKey]: callerUrl(),
    kind: "dataProvider" as const,
    meta: deepFreeze(meta),
    handler,
  });
}

/** True for a value made by `workflow()`. */
export function isWorkflow(value: unknown): value is Workflow<never, unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { [brand]?: unknown })[brand] === "workflow"
  );
}

/** True for a value made by `dataProvider()`. */
export function isDataProvider(value: unknown): value is DataProvider {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { [brand]?: unknown })[brand] === "dataProvider"
  );
}

/** A copy of a list option; anything else is kept as it is for the checks to report. */
function copyList(value: readonly string[] | undefined): string[] {
  return Array.isArray(value) ? [...value] : ((value ?? []) as string[]);
}

function unknownKeys(options: unknown, allowed: readonly string[]): string[] {
  if (options === null || typeof options !== "object") return ["options must be an object"];
  const unknown = Object.keys(options).filter((key) => !allowed.includes(key));
  if (!unknown.length) return [];
  const list = unknown.map((key) => JSON.stringify(key)).join(", ");
  return [`unknown option ${list}; options are ${allowed.join(", ")}`];
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
