import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveDenoBinary } from "../local/deno-binary.js";
import { emptyLocalConfig, type LocalConfig } from "../local/local-config.js";
import { builtSdkEntry, type LocalWorkspace, runLocally } from "../local/local-run.js";
import type { DenoRunResult } from "../local/run-deno.js";
import type { JsonValue } from "../meta.js";
import type { FailureInfo, NotificationMessage } from "../protocol.js";

/**
 * Helpers for tests that run workflow code in the real Deno binary, with the real channel
 * server of src/local playing the runner.
 */

/** The fixture workspace (sdk/fixtures/workspace), which plays an organization's tree. */
export const fixtureRoot = fileURLToPath(new URL("../../fixtures/workspace", import.meta.url));

/** A LocalWorkspace over `root` with the built SDK. */
export function testWorkspace(root = fixtureRoot): LocalWorkspace {
  return { deno: resolveDenoBinary(), root, sdkEntry: builtSdkEntry() };
}

/** Writes `files` (workspace path → source) into a fresh temporary workspace. */
export async function temporaryWorkspace(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "bifrost-ws-"));
  for (const [path, source] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), source);
  }
  return root;
}

export interface FixtureRun {
  run: DenoRunResult;
  notifications: NotificationMessage[];
}

/** Runs a workflow (or data provider) of the fixture workspace and collects what it sent. */
export async function runFixture(options: {
  module: string;
  target: { workflow: string } | { dataProvider: string };
  params?: Record<string, JsonValue>;
  config?: Partial<LocalConfig>;
  network?: string[];
  root?: string;
}): Promise<FixtureRun> {
  const notifications: NotificationMessage[] = [];
  const run = await runLocally(testWorkspace(options.root), {
    module: options.module,
    target: options.target,
    params: options.params ?? {},
    config: { ...emptyLocalConfig(), ...options.config },
    network: options.network ?? [],
    timeoutMs: 30_000,
    onNotification: (message) => notifications.push(message),
  });
  return { run, notifications };
}

/** The failure a run reported; throws (with stderr) when it reported something else. */
export function failureOf({ run }: FixtureRun): FailureInfo {
  if (run.completion?.type !== "failure") {
    throw new Error(
      `expected a failure, got ${JSON.stringify(run.completion)} (stderr: ${run.stderr})`,
    );
  }
  return run.completion.error;
}

/** The result a run reported; throws (with stderr) when it reported something else. */
export function resultOf({ run }: FixtureRun): JsonValue {
  if (run.completion?.type !== "result") {
    throw new Error(
      `expected a result, got ${JSON.stringify(run.completion)} (stderr: ${run.stderr})`,
    );
  }
  return run.completion.value;
}
