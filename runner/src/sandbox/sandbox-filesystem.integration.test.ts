import { access, mkdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  attemptPrelude,
  createSandboxFixture,
  lineFor,
  type SandboxFixture,
} from "../testing/sandbox-fixture.js";
import { materializeTree } from "./tree.js";

// The probes of research/deno-sandbox.md §0/§2 that concern files, the environment and
// privileges, each run in the real bubblewrap + Deno sandbox.

const runnerSecret = "postgres://runner:hunter2@127.0.0.1:5432/bifrost";
let fixture: SandboxFixture;
let treeA: string;
let treeB: string;

beforeAll(async () => {
  // Something the runner has and no sandbox may ever see.
  process.env.BIFROST_DATABASE_URL = runnerSecret;
  fixture = await createSandboxFixture();
  treeA = await fixture.tree("org-a", { "shared/halopsa.ts": 'export const who: string = "A";\n' });
  treeB = await fixture.tree("org-b", {
    "shared/halopsa.ts": 'export const who: string = "B";\n',
    "shared/only-b.ts": 'export const secret: string = "b-secret";\n',
  });
});

afterAll(async () => {
  delete process.env.BIFROST_DATABASE_URL;
  await fixture?.cleanup();
});

describe.concurrent("the sandbox's file system", () => {
  test("a static text import of /etc/hosts fails: the file is not there", async () => {
    const result = await fixture.run({
      entry: 'import text from "/etc/hosts" with { type: "text" };\nconsole.log(text);',
    });
    expect(result.outcome.exitCode).toBe(1);
    expect(result.output).toContain('Module not found "file:///etc/hosts"');
  });

  test("a static text import of /etc/passwd fails: the file is not there", async () => {
    const result = await fixture.run({
      entry: 'import text from "/etc/passwd" with { type: "text" };\nconsole.log(text);',
    });
    expect(result.outcome.exitCode).toBe(1);
    expect(result.output).toContain('Module not found "file:///etc/passwd"');
  });

  test("org A sees its own tree at /workspace and nothing of org B's", async () => {
    const own = await fixture.run({
      organizationId: "org-a",
      entry: 'import { who } from "shared/halopsa.ts";\nconsole.log("who:", who);',
    });
    expect(own.stdout).toEqual(["who: A"]);
    for (const path of [join(treeB, "shared/only-b.ts"), "/workspace/shared/only-b.ts"]) {
      const result = await fixture.run({
        organizationId: "org-a",
        entry: `import text from ${JSON.stringify(path)} with { type: "text" };\nconsole.log(text);`,
      });
      expect(result.outcome.exitCode).toBe(1);
      expect(result.output).toContain(`Module not found "file://${path}"`);
      expect(result.output).not.toContain("b-secret");
    }
    expect(treeA).not.toBe(treeB);
  });

  test("org B's Deno cache (its emitted sources) is not mounted for org A", async () => {
    const b = await fixture.run({
      organizationId: "org-b",
      entry: 'import { secret } from "shared/only-b.ts";\nconsole.log(secret.length);',
    });
    expect(b.stdout).toEqual(["8"]);
    const emitted = "gen/file/workspace/shared/only-b.ts.js";
    // B's cache really holds the emit, so A not finding it means A cannot see B's cache.
    await access(join(fixture.root, "deno-dirs/org-b", emitted));
    for (const path of [`/deno-dir/${emitted}`, join(fixture.root, "deno-dirs/org-b", emitted)]) {
      const a = await fixture.run({
        organizationId: "org-a",
        entry: `import text from ${JSON.stringify(path)} with { type: "text" };\nconsole.log(text);`,
      });
      expect(a.outcome.exitCode).toBe(1);
      expect(a.output).toContain("Module not found");
      expect(a.output).not.toContain("b-secret");
    }
  });

  test("the environment holds only the contract's variables, never the runner's", async () => {
    const result = await fixture.run({
      token: "tok-123",
      entry: `${attemptPrelude}
import pid1Environ from "/proc/1/environ" with { type: "text" };
import pid1Cmdline from "/proc/1/cmdline" with { type: "text" };
console.log("pid1 environ names:", pid1Environ.split("\\0").filter(Boolean).map((v) => v.split("=")[0]).join(","));
console.log("pid1 cmdline has token:", pid1Cmdline.includes("tok-123"));
await attempt("database url", () => Deno.env.get("BIFROST_DATABASE_URL"));
await attempt("all variables", () => JSON.stringify(Deno.env.toObject()));
await attempt("token", () => Deno.env.get("BIFROST_TOKEN"));
await attempt("socket", () => Deno.env.get("BIFROST_SOCKET"));
await attempt("home", () => Deno.env.get("HOME"));
await attempt("proc self environ", () => Deno.readTextFileSync("/proc/self/environ"));`,
    });
    expect(result.outcome.exitCode).toBe(0);
    expect(result.output).not.toContain("hunter2");
    // Deno itself is pid 1 (no bubblewrap init): its environment is the contract's, nothing else.
    expect(lineFor(result, "pid1 environ names")).toBe(
      "pid1 environ names: DENO_DIR,HOME,NO_COLOR,DENO_NO_UPDATE_CHECK,DENO_NO_PACKAGE_JSON,BIFROST_SOCKET,BIFROST_TOKEN,PWD",
    );
    expect(lineFor(result, "pid1 cmdline has token")).toBe("pid1 cmdline has token: false");
    expect(lineFor(result, "database url")).toContain(
      'NotCapable: Requires env access to "BIFROST_DATABASE_URL"',
    );
    expect(lineFor(result, "all variables")).toContain("NotCapable: Requires env access");
    expect(lineFor(result, "token")).toBe("token: ok tok-123");
    expect(lineFor(result, "socket")).toBe("socket: ok /run/bifrost/sdk.sock");
    expect(lineFor(result, "home")).toContain('NotCapable: Requires env access to "HOME"');
    expect(lineFor(result, "proc self environ")).toContain(
      'NotCapable: Requires read access to "/proc/self/environ"',
    );
  });

  test("a static import of /proc/self/environ is denied", async () => {
    const result = await fixture.run({
      entry: 'import text from "/proc/self/environ" with { type: "text" };\nconsole.log(text);',
    });
    expect(result.outcome.exitCode).toBe(1);
    expect(result.output).toMatch(/Requires read access to "\/proc\/\d+\/environ"/);
  });

  test("writing is denied everywhere, /tmp included, when the contract grants no scratch", async () => {
    const paths = [
      "/workspace/x.ts",
      "/job/entry.js",
      "/deno-dir/x",
      "/run/bifrost/x",
      "/x",
      "/tmp/x",
    ];
    const result = await fixture.run({
      entry: `${attemptPrelude}
for (const path of ${JSON.stringify(paths)}) await attempt(path, () => Deno.writeTextFileSync(path, "x"));`,
    });
    for (const path of paths) {
      expect(lineFor(result, path)).toContain(`NotCapable: Requires write access to "${path}"`);
    }
  });

  test("with scratch space only /tmp is writable, up to the tmpfs size", async () => {
    const result = await fixture.run({
      scratch: true,
      entry: `${attemptPrelude}
await attempt("small", () => Deno.writeFileSync("/tmp/small", new Uint8Array(1024 * 1024)));
await attempt("too big", () => Deno.writeFileSync("/tmp/big", new Uint8Array(32 * 1024 * 1024)));
await attempt("outside", () => Deno.writeTextFileSync("/deno-dir/x", "x"));`,
    });
    expect(lineFor(result, "small")).toBe("small: ok ");
    expect(lineFor(result, "too big")).toMatch(/No space left on device|File too large/);
    expect(lineFor(result, "outside")).toContain("NotCapable: Requires write access");
  });

  test("running programs, loading native code and reading system information are denied", async () => {
    const result = await fixture.run({
      entry: `${attemptPrelude}
import childProcess from "node:child_process";
await attempt("command", () => new Deno.Command("/bin/deno", { args: ["--version"] }).outputSync());
await attempt("node spawn", () => childProcess.spawnSync("/bin/deno", ["--version"], { env: {} }));
await attempt("deno run", () => Deno.run({ cmd: ["/bin/deno", "--version"] }));
await attempt("dlopen", () => Deno.dlopen("/lib/x86_64-linux-gnu/libc.so.6", {}));
await attempt("hostname", () => Deno.hostname());`,
    });
    expect(lineFor(result, "command")).toContain('NotCapable: Requires run access to "/bin/deno"');
    // node:child_process trips over the env permission before it gets to the run permission.
    expect(lineFor(result, "node spawn")).toContain("NotCapable: Requires");
    expect(lineFor(result, "deno run")).toContain('NotCapable: Requires run access to "/bin/deno"');
    expect(lineFor(result, "dlopen")).toContain("NotCapable: Requires ffi access");
    expect(lineFor(result, "hostname")).toContain('NotCapable: Requires sys access to "hostname"');
  });

  test("a symlink planted in the tree store is refused by tree.ts, never followed", async () => {
    const orgDir = join(fixture.root, "trees", "org-planted");
    await mkdir(orgDir, { recursive: true });
    await symlink("/etc", join(orgDir, "fp"));
    await expect(
      materializeTree(
        { root: join(fixture.root, "trees"), fetchContent: async () => "" },
        "org-planted",
        "fp",
        [],
      ),
    ).rejects.toThrow("is not a directory (a symlink?); refusing to use it");
  });
});
