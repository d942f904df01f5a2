import { describe, expect, test } from "vitest";
import { createBootHintViews } from "./boot-hints.js";
import type { SandboxView } from "./sandbox-view.js";

const view = (fingerprint: string): SandboxView => ({
  fingerprint,
  importMapJson: "{}",
  organizationHosts: [],
});

function reader() {
  const reads: string[] = [];
  let version = 0;
  let fail = false;
  return {
    reads,
    bump: () => version++,
    failNext: () => {
      fail = true;
    },
    read: async (organizationId: string) => {
      reads.push(organizationId);
      if (fail) {
        fail = false;
        throw new Error("database away");
      }
      return view(`${organizationId}@${version}`);
    },
  };
}

describe("boot hint views", () => {
  test("a view serves its organization for the TTL, then is read again; organizations never share one", async () => {
    let clock = 0;
    const r = reader();
    const hints = createBootHintViews(r.read, { ttlMs: 1000, now: () => clock });
    expect((await hints.get("org-a")).fingerprint).toBe("org-a@0");
    expect((await hints.get("org-b")).fingerprint).toBe("org-b@0");
    r.bump();
    clock = 999;
    expect((await hints.get("org-a")).fingerprint).toBe("org-a@0");
    expect((await hints.get("org-b")).fingerprint).toBe("org-b@0");
    clock = 1000;
    expect((await hints.get("org-a")).fingerprint).toBe("org-a@1");
    expect(r.reads).toEqual(["org-a", "org-b", "org-a"]);
  });

  test("concurrent starts of one organization share one read", async () => {
    const r = reader();
    const hints = createBootHintViews(r.read, { ttlMs: 1000 });
    const views = await Promise.all([1, 2, 3].map(() => hints.get("org-a")));
    expect(new Set(views.map((v) => v.fingerprint))).toEqual(new Set(["org-a@0"]));
    expect(r.reads).toEqual(["org-a"]);
  });

  test("a failed read is not kept; clear() forgets every view", async () => {
    const r = reader();
    const hints = createBootHintViews(r.read, { ttlMs: 60_000 });
    r.failNext();
    await expect(hints.get("org-a")).rejects.toThrow("database away");
    expect((await hints.get("org-a")).fingerprint).toBe("org-a@0");
    r.bump();
    hints.clear();
    expect((await hints.get("org-a")).fingerprint).toBe("org-a@1");
    expect(r.reads).toEqual(["org-a", "org-a", "org-a"]);
  });

  test("at most maxOrganizations views are held", async () => {
    const r = reader();
    const hints = createBootHintViews(r.read, { ttlMs: 60_000, maxOrganizations: 2 });
    await hints.get("org-a");
    await hints.get("org-b");
    await hints.get("org-c"); // full: the held views are dropped, org-c's kept
    await hints.get("org-c");
    await hints.get("org-a");
    expect(r.reads).toEqual(["org-a", "org-b", "org-c", "org-a"]);
  });
});
