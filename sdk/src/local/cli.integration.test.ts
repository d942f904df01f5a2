import { execFile } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { fixtureRoot, temporaryWorkspace } from "../testing/deno-harness.js";

// bifrost-local end to end: the bin, as an author runs it, in the fixture workspace.

const bin = fileURLToPath(new URL("../../bin/bifrost-local.mjs", import.meta.url));
const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

function bifrostLocal(
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function configFile(content: object): Promise<string> {
  const dir = await temporaryWorkspace({ "local-config.json": JSON.stringify(content) });
  roots.push(dir);
  return join(dir, "local-config.json");
}

describe("bifrost-local", () => {
  it("runs a workflow with typed params and a config file and prints its result", async () => {
    const config = await configFile({
      organization: { id: "contoso", name: "Contoso" },
      config: { "halo.url": "https://contoso.halo.example" },
      secrets: { "halo.secret": "s3cret-value" },
    });
    const { code, stdout, stderr } = await bifrostLocal(
      [
        "run",
        "workflows/onboard.ts",
        "--param",
        "email=a@b.co",
        "--param",
        "count=3",
        "--param",
        "tags=x, y",
        "--config",
        config,
      ],
      fixtureRoot,
    );
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      greeting: "hello, a@b.co",
      count: 3,
      tags: ["x", "y"],
      url: "https://contoso.halo.example",
      organization: { id: "contoso", name: "Contoso" },
    });
    expect(stderr).toBe(
      [
        '[info] onboarding {"email":"a@b.co","count":3}',
        "[debug] debug line",
        '[checkpoint] validated {"email":"a@b.co"}',
        '[warning] secret length {"length":12}',
        "",
      ].join("\n"),
    );
  });

  it("rejects params that do not parse or validate, naming each, before running anything", async () => {
    const { code, stdout, stderr } = await bifrostLocal(
      [
        "run",
        "workflows/onboard.ts",
        "--param",
        "email=nope",
        "--param",
        "count=2.5",
        "--param",
        "colour=red",
      ],
      fixtureRoot,
    );
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      [
        "bifrost-local: invalid params for onboard_user:",
        '  count must be an integer, got "2.5"',
        '  unknown param "colour"; this workflow takes: email, count, note, tags',
        '  email must be an email address like name@example.com, got "nope"',
        "",
      ].join("\n"),
    );
  });

  it("prints a failure with its kind and exits 1", async () => {
    const { code, stderr } = await bifrostLocal(
      ["run", "workflows/failing.ts", "--workflow", "reject_user"],
      fixtureRoot,
    );
    expect(code).toBe(1);
    expect(stderr).toBe("failed (user): UserError: no mailbox for a@b.co\n");
  });

  it("asks for --workflow when a module declares several", async () => {
    const { code, stderr } = await bifrostLocal(["run", "workflows/failing.ts"], fixtureRoot);
    expect(code).toBe(2);
    expect(stderr).toContain(
      "bifrost-local: the module declares several workflows (crash, reject_user, retry_later, throws_string): choose one with --workflow",
    );
  });

  it("redacts secret values from what it prints", async () => {
    const root = await temporaryWorkspace({
      "workflows/leak.ts": [
        'import { workflow } from "bifrost";',
        'export const leak = workflow({ name: "leak" }, async (_params, ctx) => {',
        '  const token = await ctx.secrets.get("api.token");',
        '  ctx.log.info("token is " + token);',
        "  return { token };",
        "});",
      ].join("\n"),
    });
    roots.push(root);
    await writeFile(
      join(root, "config.json"),
      JSON.stringify({ secrets: { "api.token": "tok-123456" } }),
    );
    const { code, stdout, stderr } = await bifrostLocal(
      ["run", "workflows/leak.ts", "--config", "config.json"],
      root,
    );
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ token: "[redacted]" });
    expect(stderr).toBe("[info] token is [redacted]\n");
  });

  it("discovers modules and prints their metadata", async () => {
    const { code, stdout } = await bifrostLocal(["discover", "workflows/catalog.ts"], fixtureRoot);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.workflows.map((w: { name: string }) => w.name)).toEqual([
      "archive_site",
      "list_sites",
      "onboard_user",
    ]);
    expect(report.errors).toEqual([]);
  });
});
