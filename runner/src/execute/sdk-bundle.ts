import { randomBytes } from "node:crypto";
import { chmod, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { buildSync } from "esbuild";

/**
 * The SDK as one module, which is what a sandbox imports as "bifrost". Deno pays per module it
 * loads (resolve, permission check, read, code-cache lookup, compile): the SDK's eighteen
 * modules cost each execution about 3 ms of CPU, the same code as one file about 0.4 ms
 * (`perf stat` medians of a bare Deno run importing it, docs/design-notes.md). The built SDK
 * stays as it is for editors and bifrost-local; this bundles it when the runner starts, so the
 * bundle is always of the SDK the runner was built with.
 */

/** The file name the import map points at (`file:///sdk/mod.js`), alone in its directory. */
const sdkBundleName = "mod.js";

/**
 * Bundles `entry` (the built SDK's mod.js) and everything it imports into `<dir>/mod.js`,
 * read-only, and returns `dir`. The file appears whole or not at all.
 */
export async function bundleSdk(entry: string, dir: string): Promise<string> {
  // Synchronous: it runs esbuild once and leaves no esbuild service process behind.
  const result = buildSync({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    // The SDK imports nothing but its own modules and reaches Deno through globalThis.
    platform: "neutral",
    target: "es2022",
    write: false,
    // Not minified: SDK frames in a workflow's stack trace stay readable.
    legalComments: "none",
    logLevel: "silent",
  });
  const [output] = result.outputFiles;
  if (!output || result.outputFiles.length !== 1) {
    throw new Error(`bundling the SDK (${entry}) produced ${result.outputFiles.length} files`);
  }
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  const staging = join(dir, `.${sdkBundleName}.${randomBytes(6).toString("hex")}`);
  try {
    await writeFile(staging, output.contents, { mode: 0o444 });
    await chmod(staging, 0o444); // the umask applies to writeFile's mode
    await rename(staging, join(dir, sdkBundleName));
  } finally {
    await rm(staging, { force: true });
  }
  return dir;
}

/**
 * The directory to mount at /sdk: the bundle in `dir`, or, when bundling fails (esbuild's
 * native binary missing on this platform, say), the built SDK's own directory, which works
 * the same at ~3 ms more per execution. Says why on `warn`: a slower runner is better than
 * none, but not silently.
 */
export async function prepareSdkDir(
  entry: string,
  dir: string,
  warn: (fields: Record<string, unknown>, message: string) => void,
): Promise<string> {
  try {
    return await bundleSdk(entry, dir);
  } catch (error) {
    warn(
      { err: error, sdk: dirname(entry) },
      "could not bundle the SDK into one module; sandboxes load its modules one by one (slower)",
    );
    return dirname(entry);
  }
}
