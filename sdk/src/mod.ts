// @ts-self-types="./mod.d.ts"
/**
 * "bifrost": what workflow code imports inside the sandbox (and under bifrost-local).
 *
 * ```ts
 * import { param, workflow } from "bifrost";
 *
 * export const onboard = workflow(
 *   { name: "onboard_user", params: { email: param.email({ required: true }) } },
 *   async ({ email }, ctx) => {
 *     ctx.log.info("onboarding", { email });
 *     return { email };
 *   },
 * );
 * ```
 *
 * The `__bifrost*` entry functions are called by the runner's generated entry.js only.
 */

export type { ConfigReader, Context, Logger, SecretReader, Variables } from "./context.js";
export {
  __bifrostDiscover,
  __bifrostRun,
  type DiscoverOptions,
  type ModuleLoader,
  type RunOptions,
} from "./entry.js";
export { RetryableError, UserError } from "./errors.js";
export type {
  DataProviderDefinition,
  DataProviderMeta,
  DataProviderOption,
  JsonValue,
  ListItemType,
  ParamMeta,
  ParamType,
  ParamValidation,
  WorkflowDefinition,
  WorkflowMeta,
} from "./meta.js";
export { DefinitionError } from "./meta-check.js";
export {
  type BoolOptions,
  type JsonOptions,
  type ListOptions,
  type NumberOptions,
  type Param,
  type ParamsOf,
  type ParamValue,
  param,
  type StringOptions,
} from "./param.js";
export type { StartedBy } from "./protocol.js";
export {
  type DataProvider,
  type DataProviderInputs,
  type DataProviderOptions,
  dataProvider,
  isDataProvider,
  isWorkflow,
  type Workflow,
  type WorkflowOptions,
  workflow,
} from "./workflow.js";
