import { createHash } from "node:crypto";
import {
  lchown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  checkTreePath,
  ensureDenoDir,
  materializeTree,
  pruneTrees,
  TreeError,
  type TreeStore,
} from "./tree.js";

const hash = (content: string) => createHash("sha256").update(content).digest("hex");

let root: string;
let store: TreeStore;
let fetched: string[];
const contents = new Map<string, string>();

function entriesOf(files: Record<string, string>) {
  return Object.entries(files).map(([path, content]) => {
    contents.set(hash(content), content);
    return { path, contentHash: hash(content) };
  });
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "bifrost-tree-"));
  fetched = [];
  store = {
    root: join(root, "trees"),
    fetchContent: async (contentHash) => {
      fetched.push(contentHash);
      return contents.get(contentHash) ?? "";
    },
  };
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("checkTreePath", () => {
  test.each([
    "../x.ts",
    "a/../x.ts",
    "/etc/passwd.ts",
    "a//b.ts",
    "./a.ts",
    ".hidden.ts",
    "a\\b.ts",
    "a\0.ts",
    "C:/x.ts",
    "x.sh",
    "",
    "a/b/",
    "with space.ts",
  ])("rejects %j", (path) => {
    expect(() => checkTreePath(path)).toThrow(TreeError);
    expect(() => checkTreePath(path)).toThrow(`tree path ${JSON.stringify(path)}`);
  });

  test("accepts plain module paths", () => {
    for (const path of ["a.ts", "shared/halopsa.ts", "workflows/on-board_2.tsx", "@x/y.json"]) {
      expect(checkTreePath(path)).toBe(path);
    }
  });
});

describe("materializeTree", () => {
  test("writes files 0444 under dirs 0555 and reuses the tree while the fingerprint holds", async () => {
    const entries = entriesOf({ "shared/halopsa.ts": "export const a = 1;", "main.ts": "x" });
    const dir = await materializeTree(store, "org-a", "fp1", entries);
    expect(dir).toBe(join(store.root, "org-a", "fp1"));
    expect(await readFile(join(dir, "shared/halopsa.ts"), "utf8")).toBe("export const a = 1;");
    expect((await lstat(join(dir, "shared/halopsa.ts"))).mode & 0o777).toBe(0o444);
    expect((await lstat(join(dir, "shared"))).mode & 0o777).toBe(0o555);
    expect((await lstat(dir)).mode & 0o777).toBe(0o555);
    fetched = [];
    expect(await materializeTree(store, "org-a", "fp1", entries)).toBe(dir);
    expect(fetched).toEqual([]);
    expect((await readdir(join(store.root, "org-a"))).sort()).toEqual(["fp1"]);
  });

  test("concurrent writers of the same tree both get the complete tree", async () => {
    const entries = entriesOf({ "a.ts": "1", "b/c.ts": "2" });
    const [one, two] = await Promise.all([
      materializeTree(store, "org-a", "fp", entries),
      materializeTree(store, "org-a", "fp", entries),
    ]);
    expect(one).toBe(two);
    expect(await readFile(join(one, "b/c.ts"), "utf8")).toBe("2");
    expect(await readdir(join(store.root, "org-a"))).toEqual(["fp"]);
  });

  test("a symlink planted where the tree goes is refused, not followed", async () => {
    await mkdir(join(store.root, "org-a"), { recursive: true });
    await symlink("/etc", join(store.root, "org-a", "fp"));
    await expect(materializeTree(store, "org-a", "fp", entriesOf({ "a.ts": "1" }))).rejects.toThrow(
      "is not a directory (a symlink?); refusing to use it",
    );
  });

  test("a symlink planted as the organization's directory is refused", async () => {
    await mkdir(store.root, { recursive: true });
    await symlink(root, join(store.root, "org-b"));
    await expect(materializeTree(store, "org-b", "fp", entriesOf({ "a.ts": "1" }))).rejects.toThrow(
      "refusing to use it",
    );
  });

  test("bad paths, ids, duplicates and content that does not match its hash are refused", async () => {
    const ok = entriesOf({ "a.ts": "1" });
    await expect(materializeTree(store, "../org", "fp", ok)).rejects.toThrow(
      'organization id "../org"',
    );
    await expect(materializeTree(store, "org", "f/p", ok)).rejects.toThrow('fingerprint "f/p"');
    await expect(
      materializeTree(store, "org", "fp", [{ path: "../escape.ts", contentHash: hash("1") }]),
    ).rejects.toThrow('tree path "../escape.ts"');
    await expect(materializeTree(store, "org", "fp", [...ok, ...ok])).rejects.toThrow(
      "listed twice",
    );
    await expect(
      materializeTree(store, "org", "fp", [{ path: "a.ts", contentHash: hash("other") }]),
    ).rejects.toThrow('content for "a.ts" hashes to');
    // Nothing half-written is left behind.
    expect(await readdir(join(store.root, "org"))).toEqual([]);
  });
});

describe("pruneTrees", () => {
  test("keeps the most recently used trees and those in use", async () => {
    for (const [i, fp] of ["old", "older", "new", "busy"].entries()) {
      const dir = await materializeTree(store, "org-a", fp, entriesOf({ "a.ts": fp }));
      const when = new Date(Date.now() - (fp === "new" ? 0 : (i + 1) * 60_000));
      await utimes(dir, when, when);
    }
    const removed = await pruneTrees(store, "org-a", { keep: 2, inUse: new Set(["busy"]) });
    expect(removed.sort()).toEqual(["older"]);
    expect((await readdir(join(store.root, "org-a"))).sort()).toEqual(["busy", "new", "old"]);
  });

  test("a pruned tree is written again when its fingerprint comes back, though this process had it", async () => {
    const files = entriesOf({ "a.ts": "pruned" });
    const dir = await materializeTree(store, "org-a", "gone", files);
    await materializeTree(store, "org-a", "kept", entriesOf({ "a.ts": "kept" }));
    const old = new Date(Date.now() - 120_000);
    await utimes(dir, old, old);
    expect(await pruneTrees(store, "org-a", { keep: 1 })).toEqual(["gone"]);
    fetched = [];
    expect(await materializeTree(store, "org-a", "gone", files)).toBe(dir);
    expect(await readFile(join(dir, "a.ts"), "utf8")).toBe("pruned");
    expect(fetched).toEqual([hash("pruned")]);
  });
});

describe("ensureDenoDir", () => {
  test("creates a private per-organization directory", async () => {
    const dir = await ensureDenoDir(join(root, "deno"), "org-a", null);
    expect(dir).toBe(join(root, "deno", "org-a"));
    expect((await lstat(dir)).mode & 0o777).toBe(0o700);
    await expect(ensureDenoDir(join(root, "deno"), "../x", null)).rejects.toThrow(TreeError);
  });

  // chown needs root, as the runner that sets a sandbox uid is.
  (process.getuid?.() === 0 ? test : test.skip)(
    "hands a cache written under another sandbox uid to the new one, links and all",
    async () => {
      const first = await ensureDenoDir(join(root, "deno"), "org-b", 65534);
      await mkdir(join(first, "gen", "file"), { recursive: true });
      await writeFile(join(first, "gen", "file", "x.js"), "cached");
      await symlink("/etc/hostname", join(first, "gen", "link"));
      for (const path of ["gen", "gen/file", "gen/file/x.js"]) {
        await lchown(join(first, path), 65534, 65534);
      }
      await lchown(join(first, "gen", "link"), 65534, 65534);
      const hostnameOwner = (await lstat("/etc/hostname")).uid;
      const again = await ensureDenoDir(join(root, "deno"), "org-b", 64123);
      expect(again).toBe(first);
      for (const path of ["", "gen", "gen/file", "gen/file/x.js", "gen/link"]) {
        const info = await lstat(join(first, path));
        expect([path, info.uid, info.gid]).toEqual([path, 64123, 64123]);
      }
      // The link's target is not followed.
      expect((await lstat("/etc/hostname")).uid).toBe(hostnameOwner);
      // Another organization's cache is left as it was.
      const other = await ensureDenoDir(join(root, "deno"), "org-c", 65534);
      expect((await lstat(other)).uid).toBe(65534);
    },
  );
});
