import { execFile } from "node:child_process";
import { readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveDenoBinary } from "./local/deno-binary.js";
import { builtSdkEntry, localImportMap } from "./local/local-run.js";
import { fixtureRoot, temporaryWorkspace, testWorkspace } from "./testing/deno-harness.js";

// The types shipped in sdk/dist as Deno (and an author's editor) sees them: every fixture
// workflow type-checks against dist/mod.d.ts, found through mod.js's @ts-self-types.

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

function denoCheck(importMap: string, files: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      resolveDenoBinary(),
      ["check", "--no-config", "--no-lock", `--import-map=${importMap}`, ...files],
      { env: { ...process.env, NO_COLOR: "1", DENO_NO_PACKAGE_JSON: "1" } },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

describe("the SDK's types under deno check", () => {
  it("type-check every fixture workflow, with params inferred from their declarations", async () => {
    const dir = await temporaryWorkspace({});
    roots.push(dir);
    const map = join(dir, "import_map.json");
    await writeFile(map, JSON.stringify({ imports: await localImportMap(testWorkspace()) }));
    const workflows = (await readdir(join(fixtureRoot, "workflows"))).map((file) =>
      join(fixtureRoot, "workflows", file),
    );
    const { code, output } = await denoCheck(map, workflows);
    expect(output).not.toContain("error");
    expect(code).toBe(0);
  });

  it("reject a handler that treats an optional param as always present", async () => {
    const root = await temporaryWorkspace({
      "wrong.ts": [
        'import { param, workflow } from "bifrost";',
        'export const w = workflow({ name: "w", params: { note: param.string() } }, ({ note }) => note.length);',
      ].join("\n"),
    });
    roots.push(root);
    await writeFile(
      join(root, "map.json"),
      JSON.stringify({ imports: { bifrost: `file://${builtSdkEntry()}` } }),
    );
    const { code, output } = await denoCheck(join(root, "map.json"), [join(root, "wrong.ts")]);
    expect(code).not.toBe(0);
    expect(output).toContain("'note' is possibly 'undefined'");
  });
});
