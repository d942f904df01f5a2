import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { DiscoveryReport } from "../discover.js";
import type { JsonValue } from "../meta.js";
import type { NotificationMessage } from "../protocol.js";
import { discoverEntrySource, runEntrySource } from "./entry-source.js";
import type { LocalConfig } from "./local-config.js";
import { type DenoRunResult, runDeno } from "./run-deno.js";

/**
 * Discovery and runs against a directory on the developer's machine instead of the
 * organization's tree: the directory plays /workspace, the built SDK plays /sdk, a
 * LocalConfig plays the platform's config, secrets and variables.
 */

/** A local workspace: the Deno executable, the workspace root, the built SDK entry. */
export interface LocalWorkspace {
  deno: string;
  root: string;
  sdkEntry: string;
}

/** The built SDK entry (sdk/dist/mod.js), or an error saying how to build it. */
export function builtSdkEntry(): string {
  const entry = fileURLToPath(new URL("../../dist/mod.js", import.meta.url));
  if (!existsSync(entry))
    throw new Error(
      `the SDK is not built (${entry} is missing): run npm run build -w @bifrost/sdk`,
    );
  return entry;
}

/**
 * The import map of a local workspace, shaped like the control plane's: "bifrost" → the SDK,
 * each top-level directory "x/" and each top-level file of the root to its file URL.
 */
export async function localImportMap(workspace: LocalWorkspace): Promise<Record<string, string>> {
  const imports: Record<string, string> = { bifrost: pathToFileURL(workspace.sdkEntry).href };
  const entries = await readdir(workspace.root, { withFileTypes: true });
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
    if (entry.isDirectory())
      imports[`${entry.name}/`] = `${pathToFileURL(join(workspace.root, entry.name)).href}/`;
    else if (entry.isFile())
      imports[entry.name] = pathToFileURL(join(workspace.root, entry.name)).href;
  }
  return imports;
}

function rootUrl(workspace: LocalWorkspace): string {
  return `${pathToFileURL(workspace.root).href}/`;
}

/**
 * Discovers what the modules (workspace paths) declare, in one Deno process. When that process
 * ends without a report (a module called Deno.exit, or looped until the deadline), discovery
 * runs again with one process per module, so the culprit is reported as that module's error
 * and the others are still discovered: the fallback docs/execution-contract.md asks runners for.
 */
export async function discoverLocally(
  workspace: LocalWorkspace,
  modules: readonly string[],
  moduleTimeoutMs?: number,
): Promise<{ report: DiscoveryReport } | { failure: string; run: DenoRunResult }> {
  const outcome = await discoverInOneProcess(workspace, modules, moduleTimeoutMs);
  if ("report" in outcome || modules.length < 2 || outcome.run.completion) return outcome;
  const report: DiscoveryReport = { workflows: [], dataProviders: [], errors: [] };
  for (const module of modules) {
    const single = await discoverInOneProcess(workspace, [module], moduleTimeoutMs);
    if ("failure" in single) {
      report.errors.push({ module, message: single.failure });
      continue;
    }
    report.workflows.push(...single.report.workflows);
    report.dataProviders.push(...single.report.dataProviders);
    report.errors.push(...single.report.errors);
  }
  return { report };
}

async function discoverInOneProcess(
  workspace: LocalWorkspace,
  modules: readonly string[],
  moduleTimeoutMs: number | undefined,
): Promise<{ report: DiscoveryReport } | { failure: string; run: DenoRunResult }> {
  const run = await runDeno({
    deno: workspace.deno,
    importMap: await localImportMap(workspace),
    entry: discoverEntrySource(
      modules.map((module) => ({ module })),
      rootUrl(workspace),
      moduleTimeoutMs,
    ),
    start: { mode: "discover" },
    handle: (method) => {
      throw new Error(`${method} is not available during discovery`);
    },
    timeoutMs: 60_000,
  });
  const completion = run.completion;
  if (completion?.type === "discovered") {
    const { type: _type, ...report } = completion;
    return { report };
  }
  if (completion?.type === "failure") return { failure: completion.error.message, run };
  return { failure: describeExit(run), run };
}

/** What to run locally and with what. */
export interface LocalRunOptions {
  module: string;
  target: { workflow: string } | { dataProvider: string };
  params: Record<string, JsonValue>;
  config: LocalConfig;
  network: readonly string[];
  timeoutMs?: number;
  onNotification?(message: NotificationMessage): void;
  onOutput?(stream: "stdout" | "stderr", text: string): void;
}

/** Runs a workflow or data provider, serving config, secrets and variables from `config`. */
export async function runLocally(
  workspace: LocalWorkspace,
  options: LocalRunOptions,
): Promise<DenoRunResult> {
  const variables = new Map(Object.entries(options.config.variables));
  const name = "workflow" in options.target ? options.target.workflow : options.target.dataProvider;
  const lookup = (table: Record<string, JsonValue>, key: unknown) =>
    typeof key === "string" && Object.hasOwn(table, key)
      ? { found: true, value: table[key] ?? null }
      : { found: false };
  return runDeno({
    deno: workspace.deno,
    importMap: await localImportMap(workspace),
    entry: runEntrySource({ module: options.module, ...options.target }, rootUrl(workspace)),
    allowNet: options.network,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    start: {
      mode: "run",
      execution: {
        id: randomUUID(),
        organization: options.config.organization,
        startedBy: { id: null, name: "bifrost-local", email: null },
        workflow: name,
      },
      params: options.params,
    },
    handle(method, params) {
      const args = (params ?? {}) as { key?: string; name?: string; value?: JsonValue };
      switch (method) {
        case "config.get":
          return lookup(options.config.config, args.key);
        case "secrets.get":
          return lookup(options.config.secrets, args.name);
        case "variables.get":
          return args.name !== undefined && variables.has(args.name)
            ? { found: true, value: variables.get(args.name) ?? null }
            : { found: false };
        case "variables.set":
          variables.set(String(args.name), args.value ?? null);
          return {};
        default:
          throw new Error(`unknown method ${JSON.stringify(method)}`);
      }
    },
    ...(options.onNotification ? { onNotification: options.onNotification } : {}),
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
  });
}

/** Why a process ended without a completion message, with the tail of its stderr. */
export function describeExit(run: DenoRunResult): string {
  const how = run.timedOut
    ? "was killed after its time limit"
    : run.signal
      ? `was killed by ${run.signal}`
      : `exited with code ${run.exitCode}`;
  const tail = run.stderr.trim().split("\n").slice(-10).join("\n");
  return `the Deno process ${how} without reporting a result${tail ? `:\n${tail}` : ""}`;
}
