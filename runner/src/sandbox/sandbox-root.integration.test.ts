import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { prepareSandboxRoot } from "./sandbox-root.js";

// Small stand-ins for Deno and its libraries: what is tested is how the root is laid out,
// linked, named and replaced. The sandbox tests run the real Deno from the real root.
let dir: string;
let deno: { path: string; libraries: string[] };
let sdkDir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "bifrost-root-test-"));
  await mkdir(join(dir, "bin"));
  await mkdir(join(dir, "sdk"));
  await mkdir(join(dir, "work"));
  await writeFile(join(dir, "bin", "deno"), "deno binary");
  await writeFile(join(dir, "bin", "libc.so.6"), "libc");
  await writeFile(join(dir, "sdk", "mod.js"), "export const sdk = 1;\n");
  // The modes of a usual install, whatever the umask of the test run.
  await chmod(join(dir, "bin", "deno"), 0o755);
  await chmod(join(dir, "bin", "libc.so.6"), 0o644);
  deno = { path: join(dir, "bin", "deno"), libraries: [join(dir, "bin", "libc.so.6")] };
  sdkDir = join(dir, "sdk");
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function listTree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).sort();
}

describe("prepareSandboxRoot", () => {
  test("holds Deno at /bin/deno, each library at its own path, the SDK and the mount points, nothing else", async () => {
    const root = await prepareSandboxRoot({ parent: join(dir, "work"), deno, sdkDir });
    const library = deno.libraries[0] as string;
    const libraryParts = library.split("/").filter(Boolean);
    const libraryDirs = libraryParts
      .slice(0, -1)
      .map((_, i) => libraryParts.slice(0, i + 1).join("/"));
    expect(await listTree(root)).toEqual(
      [
        ...new Set([
          "bin",
          "bin/deno",
          "deno-dir",
          "dev",
          "dev/null",
          "dev/urandom",
          "etc",
          "job",
          "proc",
          "run",
          "run/bifrost",
          "run/bifrost/sdk.sock",
          "sdk",
          "sdk/mod.js",
          "tmp",
          "workspace",
          ...libraryDirs,
          libraryParts.join("/"),
        ]),
      ].sort(),
    );
    expect(await readFile(join(root, "bin/deno"), "utf8")).toBe("deno binary");
    expect(await readFile(join(root, library), "utf8")).toBe("libc");
    // Hard links on the same file system: no copy of a 95 MB binary per runner.
    expect((await stat(join(root, "bin/deno"))).ino).toBe((await stat(deno.path)).ino);
    expect((await stat(root)).mode & 0o777).toBe(0o755);
    expect((await stat(join(root, "run/bifrost"))).mode & 0o777).toBe(0o755);
    expect((await stat(join(root, "sdk/mod.js"))).mode & 0o777).toBe(0o444);
    expect((await stat(join(root, "dev/null"))).size).toBe(0);
  });

  test("the same Deno and SDK find the same root; a changed SDK gets a new one and the old is removed", async () => {
    const parent = join(dir, "work");
    const first = await prepareSandboxRoot({ parent, deno, sdkDir });
    const built = (await stat(join(first, "bin/deno"))).ctimeMs;
    expect(await prepareSandboxRoot({ parent, deno, sdkDir })).toBe(first);
    expect((await stat(join(first, "bin/deno"))).ctimeMs).toBe(built);

    await writeFile(join(sdkDir, "mod.js"), "export const sdk = 2;\n");
    const second = await prepareSandboxRoot({ parent, deno, sdkDir });
    expect(second).not.toBe(first);
    expect(await readFile(join(second, "sdk/mod.js"), "utf8")).toBe("export const sdk = 2;\n");
    expect(await readdir(parent)).toEqual([second.slice(parent.length + 1)]);
  });

  test("a replaced Deno binary (a new inode, as npm and dpkg write it) gets a new root", async () => {
    const parent = join(dir, "work");
    const first = await prepareSandboxRoot({ parent, deno, sdkDir });
    await rm(deno.path);
    await writeFile(deno.path, "deno binary, next version", { mode: 0o755 });
    const second = await prepareSandboxRoot({ parent, deno, sdkDir });
    expect(second).not.toBe(first);
    expect(await readFile(join(second, "bin/deno"), "utf8")).toBe("deno binary, next version");
  });

  test("across file systems the files are copied, with their modes", async () => {
    // /dev/shm is a tmpfs: a link from the test's temp dir into it fails with EXDEV.
    const parent = await mkdtemp("/dev/shm/bifrost-root-test-");
    try {
      const root = await prepareSandboxRoot({ parent, deno, sdkDir });
      const copied = await stat(join(root, "bin/deno"));
      expect(copied.ino).not.toBe((await stat(deno.path)).ino);
      expect(copied.mode & 0o777).toBe(0o755);
      expect(await readFile(join(root, "bin/deno"), "utf8")).toBe("deno binary");
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  test("a Deno or library only its owner may use (an install under umask 077) is copied and opened to all; the original keeps its mode", async () => {
    await chmod(deno.path, 0o700);
    const library = deno.libraries[0] as string;
    await chmod(library, 0o600);
    const root = await prepareSandboxRoot({ parent: join(dir, "work"), deno, sdkDir });
    for (const [original, inRoot, mode, openMode] of [
      [deno.path, join(root, "bin/deno"), 0o700, 0o755],
      [library, join(root, library), 0o600, 0o644],
    ] as const) {
      const copy = await stat(inRoot);
      expect(copy.ino).not.toBe((await stat(original)).ino);
      expect(copy.mode & 0o777).toBe(openMode);
      expect((await stat(original)).mode & 0o777).toBe(mode);
      expect(await readFile(inRoot, "utf8")).toBe(await readFile(original, "utf8"));
    }
  });

  test("a Deno made owner-only after its root was built gets a new root, with an open copy", async () => {
    const first = await prepareSandboxRoot({ parent: join(dir, "work"), deno, sdkDir });
    await chmod(deno.path, 0o700);
    const second = await prepareSandboxRoot({ parent: join(dir, "work"), deno, sdkDir });
    expect(second).not.toBe(first);
    expect((await stat(join(second, "bin/deno"))).mode & 0o777).toBe(0o755);
    expect((await stat(join(second, "bin/deno"))).ino).not.toBe((await stat(deno.path)).ino);
  });

  test("a crashed build's staging directory is removed after an hour, not while it may be in progress", async () => {
    const parent = join(dir, "work");
    const old = join(parent, ".staging-sandbox-root-old");
    const young = join(parent, ".staging-sandbox-root-young");
    await mkdir(old);
    await mkdir(young);
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(old, twoHoursAgo, twoHoursAgo);
    const root = await prepareSandboxRoot({ parent, deno, sdkDir });
    expect((await readdir(parent)).sort()).toEqual(
      [".staging-sandbox-root-young", root.slice(parent.length + 1)].sort(),
    );
  });
});
