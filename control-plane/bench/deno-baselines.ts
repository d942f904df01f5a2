import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createExecutorDeps, type ExecutorDeps, executeWorkflow } from "@bifrost/runner/execute";
// The runner does not export its sandbox primitives (only whole executions), and a benchmark
// is no reason to widen its API: these resolve through the project reference and run from
// source under tsx, as the runner's own sandbox fixture uses them.
import { buildNetworkPolicy } from "../../runner/src/sandbox/network-policy.js";
import { buildSandboxCommand } from "../../runner/src/sandbox/sandbox-command.js";
import { createSandboxHost, runSandboxed } from "../../runner/src/sandbox/sandbox-process.js";
import { ensureDenoDir, materializeTree } from "../../runner/src/sandbox/tree.js";
import { buildImportMap } from "../src/modules/import-map.js";

const run = promisify(execFile);

/** What every baseline runs: prints one JSON line, nothing else. */
export const trivialScript =
  "const result: { ok: boolean } = { ok: true };\nconsole.log(JSON.stringify(result));\n";

/** The platform's trivial workflow: the same work, as a module the control plane discovers. */
export const trivialWorkflowPath = "workflows/trivial.ts";
export const trivialWorkflowName = "trivial";
export const trivialWorkflow = `import { workflow } from "bifrost";\nexport const t = workflow({ name: "${trivialWorkflowName}" }, () => ({ ok: true }));\n`;

/** One run of each baseline; each throws unless the run printed or returned `{ ok: true }`. */
export interface DenoBaselines {
  /** The native Deno binary (never the npm shim) and its version. */
  deno: { path: string; version: string };
  /** What the sandbox host could not enforce here (missing cgroups), as it warned at start. */
  sandboxWarnings: readonly string[];
  /** `deno run --no-prompt --no-config trivial.ts`, spawned from Node, warm DENO_DIR. */
  raw(): Promise<void>;
  /**
   * The same file, imported by /job/entry.js, in the runner's sandbox (cgroups, rlimits,
   * uid 65534, bubblewrap namespaces and mounts, seccomp, the contract's Deno flags) without
   * the SDK. `ready: false` spawns the sandbox's starter on demand instead of taking a
   * waiting one, to show what the starter pool saves.
   */
  sandboxed(options?: { ready: boolean }): Promise<void>;
  /**
   * The trivial workflow through the runner's execution path (tree reuse, job dir, SDK
   * channel, SDK entry, sandbox) with in-process services: a runner with no control plane.
   */
  runnerExecution(): Promise<void>;
  cleanup(): Promise<void>;
}

/** Prepares the baselines in temp dirs of their own, with every Deno cache warmed once. */
export async function createDenoBaselines(): Promise<DenoBaselines> {
  const root = await mkdtemp(join(tmpdir(), "bifrost-bench-deno-"));
  try {
    return await prepare(root);
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
}

async function prepare(root: string): Promise<DenoBaselines> {
  // The sandbox runs as another uid, which must be able to reach everything below root.
  await chmod(root, 0o711);
  const rawDir = join(root, "raw");
  await mkdir(rawDir);
  const denoDir = join(rawDir, "deno-dir");
  const script = join(rawDir, "trivial.ts");
  await writeFile(script, trivialScript);

  const warnings: string[] = [];
  const contents = new Map<string, string>();
  const contentHash = (content: string) => {
    const hash = createHash("sha256").update(content).digest("hex");
    contents.set(hash, content);
    return hash;
  };
  const executor = await createExecutorDeps({
    workDir: join(root, "runner"),
    fetchContent: async (hash) => contents.get(hash) ?? "",
    logger: { warn: (_fields, message) => warnings.push(message) },
  });
  const { run: sandboxRun, close: closeSandboxRun } = await prepareSandboxRun(
    executor,
    contentHash(trivialScript),
  );
  const workflowHash = contentHash(trivialWorkflow);
  const expectOk = (what: string, output: string) => {
    if (output.trim() !== '{"ok":true}') {
      throw new Error(`${what} printed ${JSON.stringify(output.slice(0, 500))}, not {"ok":true}`);
    }
  };
  const noService = async (): Promise<never> => {
    throw new Error("the trivial workflow calls no service");
  };
  let executions = 0;

  return {
    deno: executor.deno,
    sandboxWarnings: warnings,
    async raw() {
      const { stdout } = await run(
        executor.deno.path,
        ["run", "--no-prompt", "--no-config", script],
        { cwd: rawDir, env: { DENO_DIR: denoDir, NO_COLOR: "1" } },
      );
      expectOk("deno run", stdout);
    },
    async sandboxed(options = { ready: true }) {
      expectOk("the sandboxed script", await sandboxRun(options.ready));
    },
    async runnerExecution() {
      const outcome = await executeWorkflow(
        executor,
        {
          executionId: `bench-${++executions}`,
          organization: { id: "bench", name: "Bench" },
          startedBy: { id: "bench", name: "Bench", email: null },
          workflow: {
            name: trivialWorkflowName,
            module: trivialWorkflowPath,
            network: [],
            timeoutSeconds: 60,
          },
          params: {},
          view: {
            fingerprint: workflowHash,
            entries: [{ path: trivialWorkflowPath, contentHash: workflowHash }],
          },
          importMap: buildImportMap([trivialWorkflowPath]),
          organizationHosts: [],
        },
        {
          getConfig: noService,
          getSecret: noService,
          getVariable: noService,
          setVariable: noService,
          log: () => {},
          checkpoint: () => {},
        },
      );
      if (outcome.status !== "succeeded") {
        throw new Error(
          `the runner's execution ${outcome.status}: ${JSON.stringify(outcome.error)}`,
        );
      }
      expectOk("the runner's execution", JSON.stringify(outcome.result));
    },
    cleanup: async () => {
      await Promise.all([executor.host.close(), closeSandboxRun()]);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * Writes a job whose entry imports the script from its tree. Returns `run`, which runs it
 * once in the sandbox (with a waiting starter or not) and returns what it printed, and
 * `close` for the host without a waiting starter.
 */
async function prepareSandboxRun(executor: ExecutorDeps, scriptHash: string) {
  const workspaceDir = await materializeTree(executor.trees, "baseline", scriptHash, [
    { path: "trivial.ts", contentHash: scriptHash },
  ]);
  const jobRoot = join(executor.jobs, "baseline");
  const jobDir = join(jobRoot, "job");
  // No SDK here: an empty file stands where the SDK's socket is mounted.
  const socketPath = join(jobRoot, "sdk.sock");
  await mkdir(jobDir, { recursive: true });
  await writeFile(socketPath, "", { mode: 0o644 });
  await Promise.all([chmod(jobRoot, 0o711), chmod(jobDir, 0o755)]);
  await writeFile(join(jobDir, "entry.js"), 'import "file:///workspace/trivial.ts";\n');
  await writeFile(join(jobDir, "import_map.json"), JSON.stringify({ imports: {} }));
  const command = buildSandboxCommand({
    bwrapPath: executor.bwrapPath,
    rootDir: executor.rootDir,
    workspaceDir,
    jobDir,
    socketPath,
    denoDir: await ensureDenoDir(executor.denoDirs, "baseline", executor.host.hostUid),
    network: buildNetworkPolicy({ workflowHosts: [], organizationHosts: [] }),
    token: "bench-token",
    heapLimitMb: executor.heapLimitMb,
    tmpSizeBytes: 16 * 1024 * 1024,
    scratch: false,
  });
  // The same host tools and limits, but no starter waiting: each run spawns its own from
  // the runner and joins the cgroup, as every sandbox did before starters.
  const cold = await createSandboxHost({ warn: () => {} }, { spares: 0, reuse: false });
  const run = async (ready: boolean) => {
    const lines: string[] = [];
    const outcome = await runSandboxed({
      host: ready ? executor.host : cold,
      command,
      limits: executor.limits,
      timeoutMs: 20_000,
      onOutput: (_stream, line) => lines.push(line),
    });
    if (outcome.exitCode !== 0) {
      throw new Error(`the sandboxed script exited with ${outcome.exitCode}: ${lines.join("\n")}`);
    }
    return lines.join("\n");
  };
  return { run, close: () => cold.close() };
}
