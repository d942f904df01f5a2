import type { DiscoveryReport } from "@bifrost/sdk/host";
import type { Sql } from "../db/postgres.js";
import type { Logger } from "../log.js";
import { buildImportMap } from "../modules/import-map.js";
import type { ModuleStore } from "../modules/module-store.js";
import { type Scope, scopeOfRow } from "../scope.js";
import type { ModuleDiscovery, WorkflowStore } from "./workflow-store.js";

/** Loads modules of one scope in the sandbox and reports what they declare. */
export type Discoverer = (request: {
  /** Organization id, or "global". */
  treeOwner: string;
  view: { fingerprint: string; entries: ReadonlyArray<{ path: string; contentHash: string }> };
  importMap: { imports: Record<string, string> };
  modules: string[];
  /** Content of the tree's files by hash (only what the scope's tree can hold). */
  contents: ReadonlyMap<string, string>;
}) => Promise<DiscoveryReport>;

/** Discovers pending modules, one scope and batch at a time. */
export interface DiscoveryWorker {
  /** Processes batches until nothing is pending; returns how many modules it recorded. */
  drain(): Promise<number>;
  /** Runs drain in the background, again whenever notify() is called or every pollMs. */
  start(): void;
  notify(): void;
  stop(): Promise<void>;
}

/**
 * Module writes mark modules pending; this worker loads each pending module inside its own
 * scope's tree (an organization's effective tree, or the global tree for global modules)
 * with no permissions, and records the workflows and data providers it declares, or why it
 * failed. Results are written only if the module still has the content that was loaded.
 */
export function createDiscoveryWorker(deps: {
  sql: Sql;
  modules: ModuleStore;
  workflows: WorkflowStore;
  discover: Discoverer;
  log: Logger;
  batchSize?: number;
  pollMs?: number;
}): DiscoveryWorker {
  const batchSize = deps.batchSize ?? 50;
  let running: Promise<number> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let again = false;
  let stopped = true;

  async function nextBatch(): Promise<
    { scope: Scope; modules: Array<{ path: string; content_hash: string }> } | undefined
  > {
    const [first] = await deps.sql<{ organization_id: string | null }[]>`
      select organization_id from modules where discovery_status = 'pending' order by id limit 1`;
    if (!first) return undefined;
    const modules = await deps.sql<{ path: string; content_hash: string }[]>`
      select path, content_hash from modules
      where organization_id is not distinct from ${first.organization_id} and discovery_status = 'pending'
      order by path limit ${batchSize}`;
    return { scope: scopeOfRow(first.organization_id), modules };
  }

  async function processBatch(
    scope: Scope,
    modules: Array<{ path: string; content_hash: string }>,
  ): Promise<void> {
    const view =
      scope.kind === "global"
        ? await deps.modules.globalView()
        : await deps.modules.effectiveView(scope.organizationId);
    const entries = view.entries ?? [];
    const contents = await deps.modules.contents(scope, [
      ...new Set(entries.map((e) => e.contentHash)),
    ]);
    let report: DiscoveryReport;
    try {
      report = await deps.discover({
        treeOwner: scope.kind === "global" ? "global" : scope.organizationId,
        view: { fingerprint: view.fingerprint, entries },
        importMap: buildImportMap(entries.map((e) => e.path)),
        modules: modules.map((m) => m.path),
        contents,
      });
    } catch (error) {
      deps.log.error({ err: error }, "discovery failed to run");
      const message = `discovery could not run: ${(error as Error).message}`;
      report = {
        workflows: [],
        dataProviders: [],
        errors: modules.map((m) => ({ module: m.path, message })),
      };
    }
    const results: ModuleDiscovery[] = modules.map((m) => {
      const error = report.errors.find((e) => e.module === m.path);
      return {
        path: m.path,
        contentHash: m.content_hash,
        workflows: report.workflows.filter((w) => w.module === m.path),
        dataProviders: report.dataProviders.filter((d) => d.module === m.path),
        ...(error && { error: error.message }),
      };
    });
    await deps.workflows.recordDiscovery(scope, results);
  }

  async function drain(): Promise<number> {
    let recorded = 0;
    for (;;) {
      const batch = await nextBatch();
      if (!batch) return recorded;
      await processBatch(batch.scope, batch.modules);
      recorded += batch.modules.length;
    }
  }

  function run(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = drain()
      .catch((error: unknown) => {
        deps.log.error({ err: error }, "discovery worker failed");
        return 0;
      })
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  }

  return {
    drain,
    start() {
      stopped = false;
      timer = setInterval(run, deps.pollMs ?? 2000);
      run();
    },
    notify: run,
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
