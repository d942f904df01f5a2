import { type DiscoveryReport, discoverEntrySource } from "@bifrost/sdk/host";
import type { ExecutionServices } from "../channel/sdk-channel.js";
import { type ExecutorDeps, runSandboxJob } from "./sandbox-job.js";

/** What to discover: modules of one scope, loaded inside that scope's tree. */
export interface DiscoverySpec {
  /** Organization id, or "global". */
  treeOwner: string;
  view: { fingerprint: string; entries: ReadonlyArray<{ path: string; contentHash: string }> };
  importMap: { imports: Record<string, string> };
  modules: string[];
  /** Bound on each module's load. */
  moduleTimeoutMs: number;
}

// Discovery runs code nobody has vetted yet: no network, no config, no secrets. What the
// process prints is kept (the last lines) to explain a failure.
function discoveryServices(output: string[]): ExecutionServices {
  return {
    getConfig: async () => ({ found: false }),
    getSecret: async () => ({ found: false }),
    getVariable: async () => ({ found: false }),
    setVariable: async () => {},
    log: (entry) => {
      output.push(entry.message);
      if (output.length > 5) output.shift();
    },
    checkpoint: () => {},
  };
}

/**
 * Loads the modules in one sandboxed process with no permissions and returns what they
 * declare. A module that fails to load is reported in `errors` without hiding the others;
 * if one takes the whole process down (crash, exit, memory, time), each module is loaded
 * again on its own and only the culprit reports the reason.
 */
export async function discoverModules(
  deps: ExecutorDeps,
  spec: DiscoverySpec,
): Promise<DiscoveryReport> {
  const output: string[] = [];
  const run = await runSandboxJob(
    deps,
    {
      treeOwner: spec.treeOwner,
      view: spec.view,
      importMap: spec.importMap,
      entrySource: discoverEntrySource(
        spec.modules.map((module) => ({ module })),
        undefined,
        spec.moduleTimeoutMs,
      ),
      start: { type: "start", mode: "discover" },
      network: { workflowHosts: [], organizationHosts: [] },
      timeoutMs: spec.moduleTimeoutMs * spec.modules.length + 5_000,
    },
    discoveryServices(output),
  );
  if (run.completion?.type === "discovered") {
    return {
      workflows: run.completion.workflows,
      dataProviders: run.completion.dataProviders,
      errors: run.completion.errors,
    } as DiscoveryReport;
  }
  // One module can take the whole process down (Deno.exit at load, an endless loop): then
  // load each module alone, so only the culprit is reported.
  if (spec.modules.length > 1) {
    const reports = [];
    for (const module of spec.modules)
      reports.push(await discoverModules(deps, { ...spec, modules: [module] }));
    return {
      workflows: reports.flatMap((r) => r.workflows),
      dataProviders: reports.flatMap((r) => r.dataProviders),
      errors: reports.flatMap((r) => r.errors),
    };
  }
  const { sandbox } = run;
  const reason = run.violation
    ? `discovery broke the SDK channel: ${run.violation}`
    : sandbox.timedOut
      ? "loading the modules took too long"
      : sandbox.outOfMemory
        ? "loading the modules ran out of memory"
        : `the discovery process ${sandbox.signal ? `was killed by ${sandbox.signal}` : `exited with code ${sandbox.exitCode}`} without a report${output.length ? `: ${output.join(" | ").slice(0, 500)}` : ""}`;
  return {
    workflows: [],
    dataProviders: [],
    errors: spec.modules.map((module) => ({ module, message: reason })),
  };
}
