import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CompletionMessage, SdkMessage } from "../protocol.js";
import { type ChannelServerOptions, createChannelServer } from "./channel-server.js";

/**
 * Runs one generated entry.js in a real Deno process with the contract's flags and a channel
 * server on a fresh Unix socket: what the runner does, minus the OS sandbox (so only for code
 * the developer trusts). Used by bifrost-local and the SDK's integration tests.
 */

import { deniedNetworks } from "./denied-networks.js";

export { deniedNetworks };

export interface DenoRunOptions extends Omit<ChannelServerOptions, "path" | "token"> {
  /** The native Deno executable (resolveDenoBinary()). */
  deno: string;
  /** The import map: "bifrost" and the workspace's top-level entries. */
  importMap: Record<string, string>;
  /** The entry.js source (runEntrySource / discoverEntrySource). */
  entry: string;
  /** Hosts for --allow-net besides the socket (the workflow's `network`). */
  allowNet?: readonly string[];
  /** SIGKILL after this many milliseconds. */
  timeoutMs?: number;
  /** Receives stdout and stderr text as it comes (untrusted log text). */
  onOutput?(stream: "stdout" | "stderr", text: string): void;
  /** Overrides the token sent in hello (tests of a refused token). */
  helloToken?: string;
}

export interface DenoRunResult {
  completion: CompletionMessage | undefined;
  transcript: SdkMessage[];
  violations: string[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

const maxCapturedChars = 256 * 1024;

/** Spawns Deno on `entry`, serves its channel until it exits, and cleans up. */
export async function runDeno(options: DenoRunOptions): Promise<DenoRunResult> {
  const dir = await mkdtemp(join(tmpdir(), "bifrost-"));
  try {
    const socket = join(dir, "sdk.sock");
    const token = randomBytes(16).toString("hex");
    await writeFile(join(dir, "import_map.json"), JSON.stringify({ imports: options.importMap }));
    await writeFile(join(dir, "entry.js"), options.entry);
    const server = await createChannelServer({ ...options, path: socket, token });
    const args = [
      "run",
      "--no-prompt",
      "--no-config",
      "--no-lock",
      "--no-remote",
      "--no-npm",
      "--node-modules-dir=none",
      `--import-map=${join(dir, "import_map.json")}`,
      `--allow-net=${[`unix:${socket}`, ...(options.allowNet ?? [])].join(",")}`,
      `--allow-read=${socket}`,
      `--allow-write=${socket}`,
      "--allow-env=BIFROST_SOCKET,BIFROST_TOKEN",
      `--deny-net=${deniedNetworks.join(",")}`,
      join(dir, "entry.js"),
    ];
    const env: Record<string, string> = {
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      DENO_NO_PACKAGE_JSON: "1",
      BIFROST_SOCKET: socket,
      BIFROST_TOKEN: options.helloToken ?? token,
    };
    for (const name of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
      const value = process.env[name];
      if (value !== undefined) env[name] = value;
    }
    const child = spawn(options.deno, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    const output = { stdout: "", stderr: "" };
    for (const stream of ["stdout", "stderr"] as const) {
      child[stream].setEncoding("utf8");
      child[stream].on("data", (text: string) => {
        if (output[stream].length < maxCapturedChars)
          output[stream] += text.slice(0, maxCapturedChars - output[stream].length);
        options.onOutput?.(stream, text);
      });
    }
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(
      (resolve, reject) => {
        child.once("error", reject);
        child.once("close", (code, sig) => resolve([code, sig]));
      },
    );
    clearTimeout(timer);
    // The connection closes with the process; its completion (if any) has been read by then.
    await server.close();
    const completion = await server.completion;
    return {
      completion,
      transcript: server.transcript,
      violations: server.violations,
      exitCode,
      signal,
      timedOut,
      ...output,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
