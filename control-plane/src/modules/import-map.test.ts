import { describe, expect, test } from "vitest";
import { buildImportMap, sandboxSdkUrl, sandboxWorkspaceUrl } from "./import-map.js";

describe("buildImportMap", () => {
  test("maps only the SDK when the tree is empty", () => {
    expect(buildImportMap([])).toEqual({ imports: { bifrost: sandboxSdkUrl } });
  });

  test("gives each top-level directory one prefix entry into the workspace", () => {
    const { imports } = buildImportMap([
      "shared/halopsa.ts",
      "shared/graph/client.ts",
      "workflows/a.ts",
    ]);
    expect(imports["shared/"]).toBe(`${sandboxWorkspaceUrl}shared/`);
    expect(imports["workflows/"]).toBe(`${sandboxWorkspaceUrl}workflows/`);
    expect(Object.keys(imports)).not.toContain("shared/graph/");
  });

  test("gives each top-level file an exact entry", () => {
    const { imports } = buildImportMap(["main.ts", "settings.json"]);
    expect(imports["main.ts"]).toBe(`${sandboxWorkspaceUrl}main.ts`);
    expect(imports["settings.json"]).toBe(`${sandboxWorkspaceUrl}settings.json`);
  });

  test("maps bifrost to the SDK", () => {
    expect(buildImportMap(["shared/a.ts"]).imports.bifrost).toBe("file:///sdk/mod.js");
  });

  test("lists each entry once however many files share it", () => {
    const { imports } = buildImportMap([
      "shared/a.ts",
      "shared/b.ts",
      "shared/a.ts",
      "main.ts",
      "main.ts",
    ]);
    expect(Object.keys(imports)).toEqual(["bifrost", "main.ts", "shared/"]);
  });

  test("sorts the entries after bifrost, whatever order the paths come in", () => {
    const paths = ["zeta/z.ts", "alpha.ts", "mid/m.ts", "Beta/b.ts", "alpha/a.ts"];
    const forward = buildImportMap(paths);
    const backward = buildImportMap([...paths].reverse());
    expect(Object.keys(forward.imports)).toEqual([
      "bifrost",
      "Beta/",
      "alpha.ts",
      "alpha/",
      "mid/",
      "zeta/",
    ]);
    expect(JSON.stringify(backward)).toBe(JSON.stringify(forward));
  });

  test("accepts any iterable of paths", () => {
    const paths = new Set(["shared/a.ts", "main.ts"]);
    expect(buildImportMap(paths.values())).toEqual(buildImportMap([...paths]));
  });

  test("points every entry inside the workspace", () => {
    const { imports } = buildImportMap(["a/b.ts", "c.ts", "@scope/x.ts"]);
    for (const [specifier, url] of Object.entries(imports)) {
      if (specifier === "bifrost") continue;
      expect(url).toBe(`${sandboxWorkspaceUrl}${specifier}`);
    }
  });
});
