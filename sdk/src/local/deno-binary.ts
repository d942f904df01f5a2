import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import { dirname, join } from "node:path";

/**
 * Where the native Deno binary is. The `deno` npm package's `bin.cjs` is a Node shim that
 * costs ~110 ms per spawn (research/deno-sandbox.md), so this finds the executable itself:
 * the platform package `@deno/<os>-<arch>[-glibc]` that `deno` depends on, resolved from the
 * `deno` package, or the copy `deno`'s postinstall leaves beside its package.json.
 */
export function resolveDenoBinary(): string {
  const require = createRequire(import.meta.url);
  let denoPackage: string;
  try {
    denoPackage = require.resolve("deno/package.json");
  } catch {
    throw new Error('the "deno" npm package is not installed: run npm install');
  }
  const executable = platform() === "win32" ? "deno.exe" : "deno";
  const target = platformPackage();
  if (target) {
    try {
      const fromDeno = createRequire(denoPackage);
      const candidate = join(dirname(fromDeno.resolve(`${target}/package.json`)), executable);
      if (existsSync(candidate)) return candidate;
    } catch {
      // Not installed for this platform: fall back to the postinstall copy below.
    }
  }
  const copy = join(dirname(denoPackage), executable);
  if (existsSync(copy)) return copy;
  throw new Error(
    `no Deno executable found for ${platform()}-${arch()} (looked for ${target ?? "a platform package"} and ${copy})`,
  );
}

function platformPackage(): string | undefined {
  const os = platform();
  const cpu = arch();
  if (os === "linux" && (cpu === "x64" || cpu === "arm64")) return `@deno/linux-${cpu}-glibc`;
  if (os === "darwin" && (cpu === "x64" || cpu === "arm64")) return `@deno/darwin-${cpu}`;
  if (os === "win32" && (cpu === "x64" || cpu === "arm64")) return `@deno/win32-${cpu}`;
  return undefined;
}
