import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DenoBinary, findExecutable, locateDenoBinary } from "../sandbox/deno-binary.js";
import { buildNetworkPolicy, type NetworkPolicy } from "../sandbox/network-policy.js";
import type { OutputLimits } from "../sandbox/output-lines.js";
import { defaultProcessLimits, type ProcessLimits } from "../sandbox/resource-limits.js";
import { buildSandboxCommand } from "../sandbox/sandbox-command.js";
import {
  createSandboxHost,
  runSandboxed,
  type SandboxHost,
  type SandboxOutcome,
} from "../sandbox/sandbox-process.js";
import { prepareSandboxRoot } from "../sandbox/sandbox-root.js";
import { ensureDenoDir, materializeTree, type TreeStore } from "../sandbox/tree.js";

/** One probe: a script run as /job/entry.js in the real sandbox. */
export interface Probe {
  entry: string;
  organizationId?: string;
  network?: NetworkPolicy;
  /** Host file mounted as /etc/hosts (only used when the network is shared). */
  hostsFile?: string;
  /** The host file bound at /run/bifrost/sdk.sock (a listening socket); an empty file if absent. */
  socketPath?: string;
  timeoutMs?: number;
  heapLimitMb?: number;
  limits?: Partial<ProcessLimits>;
  outputLimits?: OutputLimits;
  scratch?: boolean;
  signal?: AbortSignal;
  token?: string;
  /** Called with every line as it arrives (the result collects them as well). */
  onLine?: (line: string) => void;
}

/** What a probe printed and how it ended. */
export interface ProbeResult {
  outcome: SandboxOutcome;
  stdout: string[];
  stderr: string[];
  /** Both streams, joined: for substring assertions on error messages. */
  output: string;
}

/** Real bubblewrap + Deno, per test file: trees per org, a Deno cache per org, an SDK dir. */
export interface SandboxFixture {
  root: string;
  host: SandboxHost;
  deno: DenoBinary;
  /** Materializes an org's tree from path → content and returns its host directory. */
  tree(organizationId: string, files: Record<string, string>): Promise<string>;
  run(probe: Probe): Promise<ProbeResult>;
  /** A fresh empty directory readable by the sandbox's host uid. */
  directory(name: string): Promise<string>;
  cleanup(): Promise<void>;
}

const warnings: string[] = [];

/**
 * Creates the fixture; warnings about missing cgroups are collected, not printed. `hostUid`
 * is the sandbox host's (see `createSandboxHost`).
 */
export async function createSandboxFixture(
  options: { hostUid?: number } = {},
): Promise<SandboxFixture> {
  const root = await mkdtemp(join(tmpdir(), "bifrost-sandbox-test-"));
  // The sandbox runs as another host uid, which must be able to reach every bind source.
  await chmod(root, 0o711);
  const [deno, host] = await Promise.all([
    locateDenoBinary(),
    createSandboxHost({ warn: (_fields, message) => warnings.push(message) }, options),
  ]);
  const bwrapPath = findExecutable("bwrap");
  const contents = new Map<string, string>();
  const store: TreeStore = {
    root: join(root, "trees"),
    fetchContent: async (hash) => contents.get(hash) ?? "",
  };
  const trees = new Map<string, string>();
  let counter = 0;
  const directory = async (name: string) => {
    const dir = join(root, `${name}-${++counter}`);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    return dir;
  };
  // Readable by the sandbox's uid whatever the umask of the test run.
  const readableFile = async (path: string, text: string) => {
    await writeFile(path, text);
    await chmod(path, 0o644);
  };
  const emptyFile = async (name: string) => {
    const path = join(root, `${name}-${++counter}`);
    await readableFile(path, "");
    return path;
  };
  const sdkDir = await directory("sdk");
  await readableFile(join(sdkDir, "mod.js"), "export const sdk = true;\n");
  const rootDir = await prepareSandboxRoot({ parent: root, deno, sdkDir });

  const tree = async (organizationId: string, files: Record<string, string>) => {
    const entries = Object.entries(files).map(([path, content]) => {
      const contentHash = createHash("sha256").update(content).digest("hex");
      contents.set(contentHash, content);
      return { path, contentHash };
    });
    const fingerprint = createHash("sha256").update(JSON.stringify(entries)).digest("hex");
    const dir = await materializeTree(store, organizationId, fingerprint, entries);
    trees.set(organizationId, dir);
    return dir;
  };

  const run = async (probe: Probe): Promise<ProbeResult> => {
    const organizationId = probe.organizationId ?? "org-probe";
    const workspaceDir = trees.get(organizationId) ?? (await tree(organizationId, {}));
    const jobDir = await directory("job");
    await readableFile(join(jobDir, "entry.js"), probe.entry);
    const importMap = {
      imports: { bifrost: "file:///sdk/mod.js", "shared/": "file:///workspace/shared/" },
    };
    await readableFile(join(jobDir, "import_map.json"), JSON.stringify(importMap));
    const command = buildSandboxCommand({
      bwrapPath,
      rootDir,
      workspaceDir,
      jobDir,
      socketPath: probe.socketPath ?? (await emptyFile("socket")),
      denoDir: await ensureDenoDir(join(root, "deno-dirs"), organizationId, host.hostUid),
      network: probe.network ?? buildNetworkPolicy({ workflowHosts: [], organizationHosts: [] }),
      ...(probe.hostsFile ? { resolver: { hosts: probe.hostsFile } } : {}),
      token: probe.token ?? "token-of-this-execution",
      heapLimitMb: probe.heapLimitMb ?? 128,
      tmpSizeBytes: 8 * 1024 * 1024,
      scratch: probe.scratch ?? false,
    });
    const stdout: string[] = [];
    const stderr: string[] = [];
    const outcome = await runSandboxed({
      host,
      command,
      limits: { ...defaultProcessLimits, ...probe.limits },
      timeoutMs: probe.timeoutMs ?? 20_000,
      ...(probe.signal ? { signal: probe.signal } : {}),
      ...(probe.outputLimits ? { outputLimits: probe.outputLimits } : {}),
      onOutput: (stream, line) => {
        (stream === "stdout" ? stdout : stderr).push(line);
        probe.onLine?.(line);
      },
    });
    return { outcome, stdout, stderr, output: [...stdout, ...stderr].join("\n") };
  };

  return {
    root,
    host,
    deno,
    tree,
    run,
    directory,
    cleanup: async () => {
      await host.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Warnings the sandbox host logged (missing cgroups), for tests that report degradation. */
export function sandboxHostWarnings(): readonly string[] {
  return warnings;
}

/**
 * Prepended to probe scripts: `await attempt("label", () => …)` prints `label: ok <value>`
 * or `label: <error name>: <message> | cause: <cause message>`, one line per attempt.
 */
export const attemptPrelude = `
const attempt = async (label, fn) => {
  try {
    const value = await fn();
    console.log(label + ": ok " + (value === undefined ? "" : String(value)));
  } catch (e) {
    console.log(label + ": " + e.name + ": " + e.message + (e.cause ? " | cause: " + e.cause.message : ""));
  }
};
`;

/** The line a probe printed for `label` (see `attemptPrelude`), or "" if there is none. */
export function lineFor(result: ProbeResult, label: string): string {
  return result.stdout.find((line) => line.startsWith(`${label}: `)) ?? "";
}
