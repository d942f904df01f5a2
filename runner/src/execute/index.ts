/**
 * The runner's execution library: what the runner process uses for every job, and what the
 * control plane uses to discover modules in the same sandbox.
 */
import { chmod, mkdir, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { builtSdkEntry } from "@bifrost/sdk/host";
import { findExecutable, locateDenoBinary } from "../sandbox/deno-binary.js";
import type { LimitsLogger } from "../sandbox/resource-limits.js";
import { defaultProcessLimits } from "../sandbox/resource-limits.js";
import { createSandboxHost } from "../sandbox/sandbox-process.js";
import { prepareSandboxRoot } from "../sandbox/sandbox-root.js";
import { createPreparedSandboxes } from "./prepared-sandboxes.js";
import type { ExecutorDeps } from "./sandbox-job.js";
import { prepareSdkDir } from "./sdk-bundle.js";

export { type DiscoverySpec, discoverModules } from "./discover-modules.js";
export {
  classify,
  type EarlySandbox,
  type ExecutionError,
  type ExecutionOutcome,
  type ExecutionSpec,
  executeWorkflow,
  executionBoot,
} from "./execute-workflow.js";
export {
  createPreparedSandboxes,
  type PreparedSandboxes,
} from "./prepared-sandboxes.js";
export type { ExecutorDeps } from "./sandbox-job.js";
export { bootSandboxJob } from "./sandbox-job.js";

/**
 * The sandbox runs as another uid, which must be able to pass through every directory above
 * the work dir to reach its tree: refuse to start otherwise, naming the directory.
 */
async function assertTraversable(dir: string): Promise<void> {
  let current = resolve(dir);
  for (;;) {
    const mode = (await stat(current)).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `sandbox work directory ${dir} is not reachable by the sandbox user: ${current} lacks search permission for others (chmod o+x ${current})`,
      );
    }
    const parent = dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

/**
 * Creates `dir` and whatever parents it lacks, and makes it and each parent it created 0711:
 * mkdir's mode passes through the umask, and under an operator's 077 the sandbox's uid could
 * not pass through them. Parents that existed are the operator's, only checked (above).
 */
async function makeTraversable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  const stop = resolve(first ?? dir);
  for (let current = resolve(dir); ; current = dirname(current)) {
    await chmod(current, 0o711);
    if (current === stop || dirname(current) === current) return;
  }
}

/**
 * Prepares a work directory (trees, per-org Deno caches, job dirs, the SDK bundled into one
 * module, the sandbox root holding Deno and the SDK; traversable by the sandbox's uid) and finds bwrap, Deno and the built SDK.
 * `fetchContent` supplies module content by hash when a tree is materialized.
 */
export async function createExecutorDeps(options: {
  workDir: string;
  fetchContent: (hash: string) => Promise<string>;
  logger: LimitsLogger;
  heapLimitMb?: number;
  /**
   * Sandbox starters kept idle and ready ahead of jobs (starter-pool.ts): one per slot lets
   * every slot start its next job without waiting for one. Default 1.
   */
  sandboxSpares?: number;
  /**
   * Sandboxes started ahead of repeating jobs (prepared-sandboxes.ts), at most this many
   * waiting at once; 0 (the default) turns it off.
   */
  preparedSandboxes?: number;
  /** Host uid (and gid) of starters and sandboxes when the runner is root; default 65534. */
  sandboxUid?: number;
}): Promise<ExecutorDeps> {
  for (const dir of ["", "trees", "deno-dirs", "jobs"]) {
    await makeTraversable(join(options.workDir, dir));
  }
  await assertTraversable(options.workDir);
  const bwrapPath = findExecutable("bwrap");
  const deno = await locateDenoBinary();
  const sdkDir = await prepareSdkDir(
    builtSdkEntry(),
    join(options.workDir, "sdk"),
    (fields, message) => options.logger.warn(fields, message),
  );
  return {
    host: await createSandboxHost(options.logger, {
      spares: options.sandboxSpares ?? 1,
      limits: defaultProcessLimits,
      ...(options.sandboxUid !== undefined && { hostUid: options.sandboxUid }),
    }),
    deno,
    bwrapPath,
    rootDir: await prepareSandboxRoot({ parent: options.workDir, deno, sdkDir }),
    trees: { root: join(options.workDir, "trees"), fetchContent: options.fetchContent },
    denoDirs: join(options.workDir, "deno-dirs"),
    jobs: join(options.workDir, "jobs"),
    limits: defaultProcessLimits,
    heapLimitMb: options.heapLimitMb ?? 256,
    ...(options.preparedSandboxes &&
      options.preparedSandboxes > 0 && {
        prepared: createPreparedSandboxes({
          maxIdle: options.preparedSandboxes,
          onError: (error) =>
            options.logger.warn({ err: error }, "could not prepare a sandbox ahead of its job"),
        }),
      }),
  };
}
