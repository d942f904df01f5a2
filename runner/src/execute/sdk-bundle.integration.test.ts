import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { builtSdkEntry } from "@bifrost/sdk/host";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { locateDenoBinary } from "../sandbox/deno-binary.js";
import { bundleSdk, prepareSdkDir } from "./sdk-bundle.js";

const run = promisify(execFile);
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "bifrost-sdk-bundle-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The export names of a module, as Deno sees them. */
async function exportsOf(url: string): Promise<string[]> {
  const deno = await locateDenoBinary();
  const script = `const m = await import(${JSON.stringify(url)}); console.log(JSON.stringify(Object.keys(m).sort()));`;
  const { stdout } = await run(deno.path, ["eval", "--no-config", script], {
    env: { DENO_DIR: join(root, "deno-dir"), NO_COLOR: "1" },
  });
  return JSON.parse(stdout) as string[];
}

describe("the SDK bundle", () => {
  test("is one read-only module that imports nothing and exports what the SDK exports", async () => {
    const dir = await bundleSdk(builtSdkEntry(), join(root, "sdk"));
    expect(await readdir(dir)).toEqual(["mod.js"]);
    const bundle = join(dir, "mod.js");
    expect((await stat(bundle)).mode & 0o777).toBe(0o444);
    const source = await readFile(bundle, "utf8");
    // No static or dynamic import of another module: Deno loads this one file.
    expect(source).not.toMatch(/^\s*import\s/m);
    expect(source).not.toMatch(/\bimport\s*\(/);
    const bundled = await exportsOf(`file://${bundle}`);
    expect(bundled).toContain("workflow");
    expect(bundled).toContain("__bifrostRun");
    expect(bundled).toEqual(await exportsOf(`file://${builtSdkEntry()}`));
  });

  test("bundling again replaces the file whole and leaves nothing else behind", async () => {
    const dir = join(root, "again");
    await bundleSdk(builtSdkEntry(), dir);
    const first = await readFile(join(dir, "mod.js"), "utf8");
    await bundleSdk(builtSdkEntry(), dir);
    expect(await readdir(dir)).toEqual(["mod.js"]);
    expect(await readFile(join(dir, "mod.js"), "utf8")).toBe(first);
  });

  test("the runner mounts the bundle, or the SDK's own modules with a warning when bundling fails", async () => {
    const warnings: string[] = [];
    const warn = (_fields: Record<string, unknown>, message: string) => warnings.push(message);
    const bundled = await prepareSdkDir(builtSdkEntry(), join(root, "prepared"), warn);
    expect(bundled).toBe(join(root, "prepared"));
    expect(warnings).toEqual([]);

    const broken = join(root, "broken-sdk");
    await mkdir(broken);
    await writeFile(join(broken, "mod.js"), 'export { missing } from "./nowhere.js";\n');
    expect(await prepareSdkDir(join(broken, "mod.js"), join(root, "unbundled"), warn)).toBe(broken);
    expect(warnings).toEqual([
      "could not bundle the SDK into one module; sandboxes load its modules one by one (slower)",
    ]);
    await expect(readdir(join(root, "unbundled"))).rejects.toThrow(/ENOENT/);
  });
});
