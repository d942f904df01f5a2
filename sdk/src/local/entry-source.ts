/**
 * The generated /job/entry.js of docs/execution-contract.md. Each module is loaded by a
 * *literal* `import("file:///…")`: Deno resolves literal dynamic imports with the static
 * graph, so they need no --allow-read (a computed import() would), and, unlike a static
 * import, a module that fails to load rejects only its own import() — the process survives
 * to report it.
 */

/** Where the sandbox mounts the organization's effective tree. */
export const workspaceUrl = "file:///workspace/";

/** A module to load: its workspace path and (by default under workspaceUrl) its file URL. */
export interface EntryModule {
  module: string;
  url?: string;
}

function loader({ module, url }: EntryModule, base: string): string {
  const href = url ?? new URL(module, base).href;
  return `() => import(${JSON.stringify(href)})`;
}

/** entry.js for running one workflow (or, with `dataProvider`, one data provider). */
export function runEntrySource(
  target: EntryModule & ({ workflow: string } | { dataProvider: string }),
  base = workspaceUrl,
): string {
  const what =
    "workflow" in target
      ? `workflow: ${JSON.stringify(target.workflow)}`
      : `dataProvider: ${JSON.stringify(target.dataProvider)}`;
  return [
    'import { __bifrostRun } from "bifrost";',
    `__bifrostRun({ module: ${JSON.stringify(target.module)}, load: ${loader(target, base)}, ${what} });`,
    "",
  ].join("\n");
}

/**
 * entry.js for discovering what the modules declare, in the given order. `moduleTimeoutMs`
 * bounds each module's load (the SDK's default is 10 s).
 */
export function discoverEntrySource(
  modules: readonly EntryModule[],
  base = workspaceUrl,
  moduleTimeoutMs?: number,
): string {
  const lines = modules.map(
    (entry) => `  ${JSON.stringify(entry.module)}: ${loader(entry, base)},`,
  );
  const options =
    moduleTimeoutMs === undefined ? "" : `, moduleTimeoutMs: ${Math.floor(moduleTimeoutMs)}`;
  return [
    'import { __bifrostDiscover } from "bifrost";',
    "__bifrostDiscover({ modules: {",
    ...lines,
    `}${options} });`,
    "",
  ].join("\n");
}
