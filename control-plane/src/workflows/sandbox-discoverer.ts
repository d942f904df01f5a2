import { createExecutorDeps, discoverModules } from "@bifrost/runner/execute";
import type { Logger } from "../log.js";
import type { Discoverer } from "./discovery-worker.js";

/**
 * A Discoverer running the runner's sandbox in this process: the same bubblewrap + Deno jail,
 * trees and SDK as executions, with no permissions at all. Calls are serialized, so the
 * content map handed to each call is the one the tree is built from.
 */
export async function createSandboxDiscoverer(options: {
  workDir: string;
  log: Logger;
  moduleTimeoutMs?: number;
  /** Host uid of the sandboxes when this process is root (default 65534). */
  sandboxUid?: number;
}): Promise<Discoverer & { close(): Promise<void> }> {
  let contents: ReadonlyMap<string, string> = new Map();
  const executor = await createExecutorDeps({
    workDir: options.workDir,
    fetchContent: async (hash) => {
      const content = contents.get(hash);
      if (content === undefined) throw new Error(`no content for module hash ${hash}`);
      return content;
    },
    logger: { warn: (fields, message) => options.log.warn(fields, message) },
    ...(options.sandboxUid !== undefined && { sandboxUid: options.sandboxUid }),
  });
  let queue: Promise<unknown> = Promise.resolve();
  const discover: Discoverer = (request) => {
    const run = queue.then(() => {
      contents = request.contents;
      return discoverModules(executor, {
        treeOwner: request.treeOwner,
        view: request.view,
        importMap: request.importMap,
        modules: request.modules,
        moduleTimeoutMs: options.moduleTimeoutMs ?? 10_000,
      });
    });
    queue = run.catch(() => {});
    return run;
  };
  // Stops its sandbox starters and removes their cgroups and directory (after the last run).
  const close = () => queue.then(() => executor.host.close());
  return Object.assign(discover, { close });
}
