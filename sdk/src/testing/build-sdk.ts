import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/**
 * Vitest global setup of the integration project: builds the SDK (sdk/dist for Deno,
 * sdk/dist-node for bifrost-local) once per run, so tests that spawn Deno load the code under
 * test even on a fresh clone. `tsc -b` is incremental: a no-op when nothing changed.
 */
export default function setup(): void {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const project = fileURLToPath(new URL("../../tsconfig.json", import.meta.url));
  try {
    execFileSync(process.execPath, [tsc, "-b", project], { stdio: "pipe" });
  } catch (error) {
    const output = (error as { stdout?: Buffer }).stdout?.toString() ?? "";
    throw new Error(`building the SDK failed (tsc -b sdk):\n${output}`);
  }
}
