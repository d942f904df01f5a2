import { describe, expect, it } from "vitest";
import { discoverEntrySource, runEntrySource } from "./entry-source.js";
import { parseLocalConfig } from "./local-config.js";

describe("parseLocalConfig", () => {
  it("reads organization, config, secrets and variables, defaulting what is absent", () => {
    expect(
      parseLocalConfig({ config: { "halo.url": "https://halo" }, secrets: { s: "v" } }, "c.json"),
    ).toEqual({
      organization: { id: "local", name: "Local" },
      config: { "halo.url": "https://halo" },
      secrets: { s: "v" },
      variables: {},
    });
  });

  it("lists every problem with the file", () => {
    expect(() =>
      parseLocalConfig({ organization: "contoso", secrets: { s: 1 }, extra: true }, "c.json"),
    ).toThrow(
      'c.json: unknown key "extra" (allowed: organization, config, secrets, variables); organization must be { "id": string, "name": string }; secrets must be an object of names to strings',
    );
  });
});

describe("entry.js", () => {
  it("loads modules by literal import() of their file URLs", () => {
    expect(runEntrySource({ module: "workflows/on board.ts", workflow: "onboard_user" })).toBe(
      'import { __bifrostRun } from "bifrost";\n' +
        '__bifrostRun({ module: "workflows/on board.ts", load: () => import("file:///workspace/workflows/on%20board.ts"), workflow: "onboard_user" });\n',
    );
    expect(
      discoverEntrySource(
        [{ module: "a.ts" }, { module: "shared/b.ts" }],
        "file:///workspace/",
        5000,
      ),
    ).toBe(
      [
        'import { __bifrostDiscover } from "bifrost";',
        "__bifrostDiscover({ modules: {",
        '  "a.ts": () => import("file:///workspace/a.ts"),',
        '  "shared/b.ts": () => import("file:///workspace/shared/b.ts"),',
        "}, moduleTimeoutMs: 5000 });",
        "",
      ].join("\n"),
    );
  });
});
