import { rm } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import { discoverLocally } from "./local/local-run.js";
import { temporaryWorkspace, testWorkspace } from "./testing/deno-harness.js";

// __bifrostDiscover in the real Deno binary: every module is loaded by a literal import() in
// entry.js, with no read permission, and a module that fails to load is reported without
// stopping the others.

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

async function discover(root: string, modules: string[], moduleTimeoutMs?: number) {
  const outcome = await discoverLocally(testWorkspace(root), modules, moduleTimeoutMs);
  if ("failure" in outcome) throw new Error(outcome.failure);
  return outcome.report;
}

describe("__bifrostDiscover", () => {
  it("reports a module's two workflows and data providers with their full metadata", async () => {
    const report = await discover(testWorkspace().root, [
      "workflows/catalog.ts",
      "workflows/onboard.ts",
    ]);
    expect(report.errors).toEqual([]);
    expect(report.workflows.map((w) => [w.name, w.module, w.exportName])).toEqual([
      // A module namespace lists its exports sorted by name.
      ["archive_site", "workflows/catalog.ts", "archiveSite"],
      ["list_sites", "workflows/catalog.ts", "listSites"],
      // Re-exported by catalog.ts, which is listed first, but declared by onboard.ts.
      ["onboard_user", "workflows/onboard.ts", "onboard"],
    ]);
    expect(report.workflows[1]).toEqual({
      name: "list_sites",
      description: "Lists the sites of a client.",
      category: "Sites",
      tags: ["sites", "read-only"],
      timeoutSeconds: null,
      schedule: null,
      network: ["api.halo.example", "*.graph.microsoft.com"],
      params: [
        {
          name: "client",
          type: "string",
          label: "Client",
          required: true,
          helpText: "The client",
          dataProvider: "clients",
        },
        {
          name: "limit",
          type: "int",
          label: "Limit",
          required: false,
          helpText: "",
          default: 10,
          validation: { min: 1, max: 100 },
        },
      ],
      module: "workflows/catalog.ts",
      exportName: "listSites",
    });
    expect(report.workflows[0]).toMatchObject({
      category: "General",
      description: "",
      tags: [],
      params: [],
    });
    expect(report.dataProviders).toEqual([
      {
        name: "bad_options",
        description: "",
        cacheTtlSeconds: 300,
        module: "workflows/catalog.ts",
        exportName: "badOptions",
      },
      {
        name: "clients",
        description: "Clients",
        cacheTtlSeconds: 60,
        module: "workflows/catalog.ts",
        exportName: "clients",
      },
    ]);
  });

  it("reports modules that fail to load, each with its reason, and still discovers the others", async () => {
    const root = await temporaryWorkspace({
      "workflows/first.ts":
        'import { workflow } from "bifrost";\nexport const a = workflow({ name: "first" }, () => 1);\n',
      "workflows/syntax.ts": "export const x = ;\n",
      "workflows/throws.ts": 'throw new Error("no halo url configured");\n',
      "workflows/missing-import.ts": 'import { x } from "shared/nope.ts";\nexport const y = x;\n',
      "workflows/bad-metadata.ts": [
        'import { param, workflow } from "bifrost";',
        'export const bad = workflow({ name: "Bad Name!", schedule: "every day", params: { n: param.int({ default: 1.5 }) } }, () => 1);',
      ].join("\n"),
      "workflows/never-loads.ts": "await new Promise(() => {});\nexport const z = 1;\n",
      "workflows/fetches.ts": 'await fetch("https://example.com/");\n',
      "workflows/duplicate.ts":
        'import { workflow } from "bifrost";\nexport const again = workflow({ name: "first" }, () => 2);\n',
      "workflows/last.ts":
        'import { dataProvider } from "bifrost";\nexport const p = dataProvider({ name: "last" }, () => []);\n',
    });
    roots.push(root);
    const modules = [
      "workflows/first.ts",
      "workflows/syntax.ts",
      "workflows/throws.ts",
      "workflows/missing-import.ts",
      "workflows/bad-metadata.ts",
      "workflows/never-loads.ts",
      "workflows/fetches.ts",
      "workflows/duplicate.ts",
      "workflows/last.ts",
    ];
    // A top-level await that never settles is caught only by the per-module deadline.
    const report = await discover(root, modules, 3000);
    expect(report.workflows.map((w) => w.name)).toEqual(["first"]);
    expect(report.dataProviders.map((p) => p.name)).toEqual(["last"]);
    const errors = Object.fromEntries(report.errors.map((error) => [error.module, error.message]));
    expect(Object.keys(errors).sort()).toEqual(
      modules.filter((m) => !["workflows/first.ts", "workflows/last.ts"].includes(m)).sort(),
    );
    expect(errors["workflows/syntax.ts"]).toMatch(/^SyntaxError: Expression expected/);
    expect(errors["workflows/throws.ts"]).toBe("Error: no halo url configured");
    expect(errors["workflows/missing-import.ts"]).toMatch(
      /Import "shared\/nope.ts" not a dependency and not in import map/,
    );
    expect(errors["workflows/bad-metadata.ts"]).toBe(
      'DefinitionError: workflow "Bad Name!" is not valid: workflow name "Bad Name!" must start with a letter and use only letters, digits, "_", "-" and "." (at most 100 characters); ' +
        'schedule "every day" must be a cron expression of five fields (minute hour day-of-month month day-of-week), like "0 6 * * 1-5"; ' +
        'param "n": default must be an integer, got 1.5',
    );
    expect(errors["workflows/never-loads.ts"]).toBe(
      "did not finish loading within 3000 ms (a top-level await that never settles?)",
    );
    expect(errors["workflows/fetches.ts"]).toBe(
      'permission denied: net access to "example.com:443" — declare the host in the workflow\'s network list',
    );
    expect(errors["workflows/duplicate.ts"]).toBe(
      'workflow "first" of workflows/duplicate.ts (export again) is also declared by workflows/first.ts (export a); names must be unique',
    );
  });

  it("falls back to one process per module when a module ends the process", async () => {
    const root = await temporaryWorkspace({
      "workflows/a.ts":
        'import { workflow } from "bifrost";\nexport const a = workflow({ name: "a" }, () => 1);\n',
      "workflows/exits.ts": "Deno.exit(7);\n",
      "workflows/b.ts":
        'import { workflow } from "bifrost";\nexport const b = workflow({ name: "b" }, () => 2);\n',
    });
    roots.push(root);
    const report = await discover(root, ["workflows/a.ts", "workflows/exits.ts", "workflows/b.ts"]);
    expect(report.workflows.map((w) => w.name)).toEqual(["a", "b"]);
    expect(report.errors).toEqual([
      {
        module: "workflows/exits.ts",
        message: "the Deno process exited with code 7 without reporting a result",
      },
    ]);
  });

  it("reports a declaration's invalid param default", async () => {
    const root = await temporaryWorkspace({
      "workflows/params.ts": [
        'import { param, workflow } from "bifrost";',
        'export const w = workflow({ name: "w", params: { n: param.int({ default: 1.5 }), tags: param.list({ items: "int", validation: { min: 5, max: 1 } }) } }, () => 1);',
      ].join("\n"),
    });
    roots.push(root);
    const report = await discover(root, ["workflows/params.ts"]);
    expect(report.errors).toEqual([
      {
        module: "workflows/params.ts",
        message:
          'DefinitionError: workflow "w" is not valid: param "n": default must be an integer, got 1.5; param "tags": validation.min 5 is greater than validation.max 1',
      },
    ]);
  });
});
