import { lstat, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createSandboxFixture, type SandboxFixture } from "../testing/sandbox-fixture.js";

// A runner started as root with BIFROST_RUNNER_SANDBOX_UID: its starters and sandboxes run as
// that host uid, not 65534, so no other "nobody" process of the host can read their files or
// their /proc. Each organization still sees only its own tree, and its cache is written as
// that uid.

const sandboxUid = 64123;
const asRoot = process.getuid?.() === 0;
let fixture: SandboxFixture;

beforeAll(async () => {
  if (!asRoot) return;
  fixture = await createSandboxFixture({ hostUid: sandboxUid });
  await fixture.tree("org-a", { "shared/halopsa.ts": 'export const who: string = "A";\n' });
  await fixture.tree("org-b", { "shared/halopsa.ts": 'export const who: string = "B";\n' });
  // An organization without a module of its own: the global tree's content.
  await fixture.tree("org-c", { "shared/halopsa.ts": 'export const who: string = "global";\n' });
});

afterAll(async () => {
  await fixture?.cleanup();
});

/** Every entry under `dir` whose owner or group is not `uid`. */
async function ownedByOthers(dir: string, uid: number): Promise<string[]> {
  const others: string[] = [];
  for (const name of await readdir(dir, { recursive: true })) {
    const info = await lstat(join(dir, name));
    if (info.uid !== uid || info.gid !== uid) others.push(`${name} ${info.uid}:${info.gid}`);
  }
  return others;
}

describe.runIf(asRoot)("a sandbox uid of the operator's choosing", () => {
  test("runs each organization's workflow as that host uid, each with its own tree", async () => {
    const probe = (organizationId: string) =>
      fixture.run({
        organizationId,
        entry: 'import { who } from "shared/halopsa.ts";\nconsole.log("who:", who);',
      });
    const results = {
      a: await probe("org-a"),
      b: await probe("org-b"),
      c: await probe("org-c"),
    };
    expect(results.a.stdout).toEqual(["who: A"]);
    expect(results.b.stdout).toEqual(["who: B"]);
    expect(results.c.stdout).toEqual(["who: global"]);
    // Each organization's cache was written by its Deno processes: as the chosen uid.
    for (const org of ["org-a", "org-b", "org-c"]) {
      const cache = join(fixture.root, "deno-dirs", org);
      expect((await readdir(cache, { recursive: true })).length, org).toBeGreaterThan(0);
      expect(await ownedByOthers(cache, sandboxUid), org).toEqual([]);
      expect((await stat(cache)).uid, org).toBe(sandboxUid);
    }
  });

  test("the starters run as that uid, and their directory admits only it and root", async () => {
    const starter = await fixture.host.starters.take({
      memoryBytes: 256 * 1024 * 1024,
      tasks: 64,
      openFiles: 256,
      fileSizeBytes: 1024 * 1024,
    });
    try {
      const status = await readFile(`/proc/${starter.pid}/status`, "utf8");
      const uids = status.match(/^Uid:[ \t]*(.*)$/m)?.[1]?.split(/\s+/);
      expect(uids).toEqual(Array(4).fill(String(sandboxUid)));
    } finally {
      await fixture.host.starters.finish(starter);
    }
    const dir = await stat(fixture.host.dir);
    expect([dir.uid, dir.gid, dir.mode & 0o7777]).toEqual([0, sandboxUid, 0o2750]);
  });
});
