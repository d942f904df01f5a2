import { isAbsolute, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import type { JsonValue, WorkflowMeta } from "../meta.js";
import { parseParamText, validateParams } from "../params.js";
import type { NotificationMessage } from "../protocol.js";
import { resolveDenoBinary } from "./deno-binary.js";
import { emptyLocalConfig, type LocalConfig, loadLocalConfig } from "./local-config.js";
import {
  builtSdkEntry,
  describeExit,
  discoverLocally,
  type LocalWorkspace,
  runLocally,
} from "./local-run.js";

/**
 * bifrost-local: runs a workflow file on the developer's machine, without the platform.
 * Discovers the module first (to learn the params' types and the network list), parses
 * `--param name=value` per the declared types, validates them like StartExecution does,
 * then runs the workflow with config and secrets from a JSON file and prints the result.
 */

export const usage = `usage:
  bifrost-local run <module> [--workflow <name> | --data-provider <name>] [--param <name>=<value>]...
                    [--config <file.json>] [--root <dir>] [--timeout <seconds>]
  bifrost-local discover <module>... [--root <dir>]

<module> is a file under the workspace root (default: the current directory), which plays
the organization's workspace: imports like "shared/halopsa.ts" resolve under it.`;

/** Where the command writes; the bin passes process streams, tests collect strings. */
export interface CliIo {
  cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
}

class UsageError extends Error {}
class ParamsError extends Error {}

/** Runs the command line; resolves with the process exit code (0 ok, 1 failed, 2 usage). */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (error) {
    io.stderr(`bifrost-local: ${(error as Error).message}\n`);
    if (error instanceof UsageError) io.stderr(`${usage}\n`);
    return error instanceof UsageError || error instanceof ParamsError ? 2 : 1;
  }
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(argv);
  const [command, ...files] = positionals;
  if (values.help) {
    io.stdout(`${usage}\n`);
    return 0;
  }
  if (command !== "run" && command !== "discover")
    throw new UsageError(`unknown command ${JSON.stringify(command ?? "")}`);
  if (!files.length) throw new UsageError(`${command} needs a module file`);
  const root = resolve(io.cwd, values.root ?? ".");
  const workspace: LocalWorkspace = { deno: resolveDenoBinary(), root, sdkEntry: builtSdkEntry() };
  const modules = files.map((file) => modulePath(root, resolve(io.cwd, file)));
  const discovered = await discoverLocally(workspace, modules);
  if ("failure" in discovered) throw new Error(discovered.failure);
  const { report } = discovered;
  for (const error of report.errors) io.stderr(`${error.module}: ${error.message}\n`);
  if (command === "discover") {
    io.stdout(`${JSON.stringify(report, null, 2)}\n`);
    return report.errors.length ? 1 : 0;
  }
  if (report.errors.length) return 1;
  if (modules.length > 1) throw new UsageError("run takes one module");
  const config = values.config
    ? await loadLocalConfig(resolve(io.cwd, values.config))
    : emptyLocalConfig();
  const module = modules[0] as string;
  let target: { workflow: string } | { dataProvider: string };
  let network: readonly string[] = [];
  let params: Record<string, JsonValue> = {};
  let timeoutSeconds: number | null = null;
  if (values["data-provider"] !== undefined) {
    // A data provider's inputs have no declared types: each --param is a string input.
    for (const pair of values.param ?? []) {
      const at = pair.indexOf("=");
      if (at < 1) throw new UsageError(`--param must be name=value, got ${JSON.stringify(pair)}`);
      params[pair.slice(0, at)] = pair.slice(at + 1);
    }
    target = { dataProvider: values["data-provider"] };
  } else {
    const workflow = pickWorkflow(report.workflows, values.workflow);
    target = { workflow: workflow.name };
    network = workflow.network;
    params = parseParams(workflow, values.param ?? []);
    timeoutSeconds = workflow.timeoutSeconds;
  }
  if (values.timeout !== undefined) {
    timeoutSeconds = Number(values.timeout);
    if (!(timeoutSeconds > 0))
      throw new UsageError(`--timeout must be a number of seconds, got ${values.timeout}`);
  }
  const redact = redactor(config);
  const run = await runLocally(workspace, {
    module,
    target,
    params,
    config,
    network,
    ...(timeoutSeconds === null ? {} : { timeoutMs: timeoutSeconds * 1000 }),
    onNotification: (message) => io.stderr(redact(formatNotification(message))),
    onOutput: (_stream, text) => io.stderr(redact(text)),
  });
  const completion = run.completion;
  if (completion?.type === "result") {
    io.stdout(redact(`${JSON.stringify(completion.value, null, 2)}\n`));
    return 0;
  }
  if (completion?.type === "failure") {
    const { kind, name, message, stack } = completion.error;
    io.stderr(redact(`failed (${kind}): ${name}: ${message}\n`));
    if (kind === "error" && stack) io.stderr(redact(`${stack}\n`));
    return 1;
  }
  io.stderr(redact(`${run.timedOut ? "timed out: " : ""}${describeExit(run)}\n`));
  return 1;
}

function parseCommandLine(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        workflow: { type: "string" },
        "data-provider": { type: "string" },
        param: { type: "string", multiple: true },
        config: { type: "string" },
        root: { type: "string" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function modulePath(root: string, file: string): string {
  const path = relative(root, file);
  if (path === "" || path.startsWith("..") || isAbsolute(path)) {
    throw new UsageError(`${file} is not inside the workspace root ${root} (set --root)`);
  }
  return path.split(sep).join("/");
}

function pickWorkflow(workflows: readonly WorkflowMeta[], name: string | undefined): WorkflowMeta {
  const names = workflows.map((workflow) => workflow.name).join(", ") || "none";
  if (name === undefined) {
    if (workflows.length === 1 && workflows[0]) return workflows[0];
    if (!workflows.length) throw new UsageError("the module declares no workflows");
    throw new UsageError(
      `the module declares several workflows (${names}): choose one with --workflow`,
    );
  }
  const found = workflows.find((workflow) => workflow.name === name);
  if (!found)
    throw new UsageError(
      `the module has no workflow ${JSON.stringify(name)} (it declares: ${names})`,
    );
  return found;
}

/** `--param name=value` per the declared types, then validated as StartExecution would. */
export function parseParams(
  workflow: WorkflowMeta,
  pairs: readonly string[],
): Record<string, JsonValue> {
  const input: Record<string, JsonValue> = {};
  const problems: string[] = [];
  const unparsed = new Set<string>();
  for (const pair of pairs) {
    const equals = pair.indexOf("=");
    if (equals <= 0) {
      problems.push(`--param ${JSON.stringify(pair)} must look like name=value`);
      continue;
    }
    const name = pair.slice(0, equals);
    const declared = workflow.params.find((param) => param.name === name);
    const parsed = declared ? parseParamText(declared, pair.slice(equals + 1)) : undefined;
    if (!parsed) {
      input[name] = pair.slice(equals + 1); // validateParams reports it as unknown
    } else if (parsed.ok) {
      input[name] = parsed.value;
    } else {
      problems.push(parsed.message);
      unparsed.add(name);
    }
  }
  const validated = validateParams(workflow.params, input);
  if (validated.ok && !problems.length) return validated.value;
  if (!validated.ok) {
    for (const error of validated.errors)
      if (!unparsed.has(error.field)) problems.push(error.message);
  }
  throw new ParamsError(`invalid params for ${workflow.name}:\n  ${problems.join("\n  ")}`);
}

function formatNotification(message: NotificationMessage): string {
  const data =
    "data" in message && message.data !== undefined ? ` ${JSON.stringify(message.data)}` : "";
  if (message.type === "checkpoint") return `[checkpoint] ${message.name}${data}\n`;
  return `[${message.level}] ${message.message}${data}\n`;
}

/** Replaces every secret value of the local config in printed text, as the platform does. */
function redactor(config: LocalConfig): (text: string) => string {
  const secrets = Object.values(config.secrets).filter((secret) => secret.length >= 4);
  return (text) => secrets.reduce((out, secret) => out.split(secret).join("[redacted]"), text);
}
