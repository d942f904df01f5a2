import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { builtSdkEntry } from "@bifrost/sdk/host";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { locateDenoBinary } from "../sandbox/deno-binary.js";
import { bundleSdk } from "./sdk-bundle.js";

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
});
