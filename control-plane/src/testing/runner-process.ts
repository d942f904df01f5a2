import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** A runner started as its own process (runner/src/main.ts), as production runs it. */
export interface RunnerProcess {
  name: string;
  pid: number;
  /** Its metrics endpoint, as its "runner started" line names it. */
  metricsUrl: string | undefined;
  /** Everything the process wrote so far (its JSON log lines). */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Processes descended from the runner right now (its sandboxes: bwrap, Deno…). */
  descendants(): Promise<number[]>;
  /** SIGTERM (drains) or SIGKILL (dies at once), then waits for the exit. */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
}

/**
 * Starts `runner/src/main.ts` with the given control plane, NATS and dispatch prefix, and
 * waits for its "runner started" log line. Progress acks come every 200 ms so tests can use
 * a short ack wait.
 */
export async function startRunnerProcess(options: {
  name: string;
  controlPlane: string;
  runnerKey: string;
  natsUrl: string;
  natsPrefix: string;
  workDir: string;
  capacity?: number;
}): Promise<RunnerProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--conditions=development", "--import", "tsx", "runner/src/main.ts"],
    {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? "",
        BIFROST_CONTROL_PLANE: options.controlPlane,
        BIFROST_RUNNER_KEY: options.runnerKey,
        BIFROST_NATS_URL: options.natsUrl,
        BIFROST_NATS_PREFIX: options.natsPrefix,
        BIFROST_RUNNER_NAME: options.name,
        BIFROST_RUNNER_WORK_DIR: options.workDir,
        BIFROST_RUNNER_CAPACITY: String(options.capacity ?? 4),
        BIFROST_RUNNER_PROGRESS_MS: "200",
        // A port of the OS's choosing: test files run runners at once.
        BIFROST_RUNNER_METRICS_LISTEN: "127.0.0.1:0",
        BIFROST_LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const pid = child.pid as number;
  let ended = false;
  void exited.then(() => {
    ended = true;
  });
  for (let i = 0; i < 300 && !output.includes('"msg":"runner started"'); i++) {
    if (ended) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!output.includes('"msg":"runner started"')) {
    child.kill("SIGKILL");
    throw new Error(`runner ${options.name} did not start:\n${output}`);
  }
  const metricsUrl = /"metrics":"(http:\/\/[^"]+)"/.exec(output)?.[1];
  return {
    name: options.name,
    pid,
    metricsUrl,
    output: () => output,
    exited,
    descendants: () => descendantsOf(pid),
    async stop(signal = "SIGTERM") {
      if (ended) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** Every live process whose parent chain leads to `root` (read from /proc). */
export async function descendantsOf(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // The command name (2nd field) may hold spaces and parentheses: parse after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[1]) parents.set(Number(entry), Number(fields[1]));
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parents) {
      if (parent === pid) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(root);
  return found;
}

/** Whether a process with this pid still exists (a zombie counts as gone). */
export async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  if (!stat) return false;
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] !== "Z";
}
