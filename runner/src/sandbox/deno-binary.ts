import { execFile } from "node:child_process";
import { accessSync, constants, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, isAbsolute, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The native Deno executable and what the sandbox must mount for it to start. */
export interface DenoBinary {
  /** Absolute host path of the executable (never the npm `bin.cjs` shim: +110 ms per spawn). */
  path: string;
  /** "2.9.6". */
  version: string;
  /**
   * Absolute paths of the dynamic loader and every shared library it links (from `ldd`), to
   * be bound read-only at the same paths inside the sandbox, and nothing else of /lib.
   */
  libraries: string[];
}

/**
 * Oldest Deno whose permission checks the sandbox relies on: 2.8.1 fixed `--deny-net` after
 * DNS resolution (GHSA DNS-rebinding fixes) and the `process.loadEnvFile` env bypass.
 */
export const minimumDenoVersion = "2.8.1";

/** The `@deno/<target>` package npm installs beside `deno` for this platform. */
export function denoPlatformPackage(platform = process.platform, arch = process.arch): string {
  if (platform !== "linux") {
    throw new Error(`the sandbox needs Linux (bubblewrap); this host is ${platform}`);
  }
  if (arch !== "x64" && arch !== "arm64") {
    throw new Error(`no Deno build for linux-${arch}; use x64 or arm64`);
  }
  return `@deno/linux-${arch}-glibc`;
}

/**
 * Resolves the native binary through Node module resolution from this package: first as a
 * hoisted dependency of the runner, then from inside the `deno` package (where npm puts its
 * optional platform dependency when it is not hoisted).
 */
export function resolveDenoExecutable(): string {
  const target = `${denoPlatformPackage()}/deno`;
  const fromRunner = createRequire(import.meta.url);
  const resolvers = [
    () => fromRunner.resolve(target),
    () => createRequire(fromRunner.resolve("deno/package.json")).resolve(target),
  ];
  const attempts: string[] = [];
  for (const resolve of resolvers) {
    try {
      const path = realpathSync(resolve());
      accessSync(path, constants.X_OK);
      return path;
    } catch (error) {
      attempts.push((error as Error).message.split("\n")[0] as string);
    }
  }
  throw new Error(
    `cannot find the native Deno binary ${target} (is the "deno" npm package installed with its optional dependencies?): ${attempts.join("; ")}`,
  );
}

/** Parses `ldd` output into the absolute paths it resolved (loader included, vDSO skipped). */
export function parseLddOutput(output: string): string[] {
  const paths = new Set<string>();
  for (const line of output.split("\n")) {
    const resolved = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (resolved?.[1]) paths.add(resolved[1]);
    else if (/=>\s+not found/.test(line)) {
      throw new Error(`the Deno binary links a library that is missing: ${line.trim()}`);
    }
  }
  return [...paths].sort();
}

/** True when `version` ("2.9.6") is at least `minimum`. */
export function isVersionAtLeast(version: string, minimum: string): boolean {
  const a = version.split(".").map(Number);
  const b = minimum.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0);
    if (difference !== 0) return difference > 0;
  }
  return true;
}

/**
 * Finds the native Deno binary, checks its version against `minimumDenoVersion` and lists
 * the shared libraries to mount. Runs two short processes; call once at start and keep it.
 */
export async function locateDenoBinary(): Promise<DenoBinary> {
  const path = resolveDenoExecutable();
  const { stdout } = await run(path, ["--version"], { env: { NO_COLOR: "1" } });
  const version = /^deno (\d+\.\d+\.\d+)/.exec(stdout)?.[1];
  if (!version) throw new Error(`cannot read the version of ${path}: ${stdout.slice(0, 80)}`);
  if (!isVersionAtLeast(version, minimumDenoVersion)) {
    throw new Error(
      `Deno ${version} at ${path} is too old for the sandbox; at least ${minimumDenoVersion} is required`,
    );
  }
  const ldd = await run("ldd", [path], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  const libraries = parseLddOutput(ldd.stdout);
  if (libraries.length === 0) throw new Error(`ldd listed no libraries for ${path}`);
  return { path, version, libraries };
}

/** Finds an executable by name on PATH (or checks an absolute path), or throws naming it. */
export function findExecutable(name: string, searchPath = process.env.PATH ?? ""): string {
  const candidates = isAbsolute(name)
    ? [name]
    : [...searchPath.split(delimiter), "/usr/bin", "/bin"].map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  throw new Error(`${name} is not installed (looked in ${candidates.join(", ")})`);
}
