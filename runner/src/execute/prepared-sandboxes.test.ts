import { describe, expect, test } from "vitest";
import { bootKey, createPreparedSandboxes } from "./prepared-sandboxes.js";
import type { BootedSandbox, SandboxBoot } from "./sandbox-job.js";

// The policy alone, with sandboxes that only record what happens to them (the real ones are
// exercised in execute-workflow.integration.test.ts).

function boot(owner: string, overrides: Partial<SandboxBoot> = {}): SandboxBoot {
  return {
    treeOwner: owner,
    view: { fingerprint: `fp-${owner}`, entries: [] },
    importMap: { imports: { bifrost: "file:///sdk/mod.js" } },
    entrySource: "entry",
    network: { workflowHosts: [], organizationHosts: [] },
    ...overrides,
  };
}

function fakeSandbox() {
  const state = { exited: false, discarded: false };
  const sandbox: BootedSandbox = {
    get exited() {
      return state.exited;
    },
    run: async () => {
      throw new Error("not run in this test");
    },
    discard: async () => {
      state.discarded = true;
    },
  };
  return { sandbox, state };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("prepared sandboxes", () => {
  test("a boot is prepared for only once it repeats, and its sandbox is taken once", async () => {
    const prepared = createPreparedSandboxes({ maxIdle: 2 });
    const made: ReturnType<typeof fakeSandbox>[] = [];
    const start = async () => {
      const fake = fakeSandbox();
      made.push(fake);
      return fake.sandbox;
    };
    prepared.anticipate(boot("a"), start);
    await settle();
    expect(made).toHaveLength(0);
    prepared.anticipate(boot("a"), start);
    await settle();
    // Two ahead, so each has two jobs' time to come up.
    expect(made).toHaveLength(2);
    expect(prepared.take(boot("b"))).toBeUndefined();
    expect(prepared.take(boot("a"))).toBe(made[0]?.sandbox);
    expect(prepared.take(boot("a"))).toBe(made[1]?.sandbox);
    expect(prepared.take(boot("a"))).toBeUndefined();
    expect(prepared.stats()).toEqual({ taken: 2, missed: 2, prepared: 2, discarded: 0 });
    // A job that takes one tops the boot up to two again, never more.
    prepared.anticipate(boot("a"), start);
    prepared.anticipate(boot("a"), start);
    await settle();
    expect(made).toHaveLength(4);
    await prepared.close();
  });

  test("any difference in the boot (tree, entry, hosts) is another key; host order is not", () => {
    const base = boot("a", {
      network: { workflowHosts: ["x.test", "y.test"], organizationHosts: [] },
    });
    expect(bootKey(base)).toBe(
      bootKey({ ...base, network: { workflowHosts: ["y.test", "x.test"], organizationHosts: [] } }),
    );
    for (const other of [
      { ...base, treeOwner: "b" },
      { ...base, view: { fingerprint: "other", entries: [] } },
      { ...base, entrySource: "other entry" },
      { ...base, network: { workflowHosts: ["x.test"], organizationHosts: [] } },
      { ...base, network: { workflowHosts: ["x.test", "y.test"], organizationHosts: ["z.test"] } },
      { ...base, importMap: { imports: {} } },
    ]) {
      expect(bootKey(other)).not.toBe(bootKey(base));
    }
  });

  test("at most maxIdle wait: another boot's oldest makes way; a dead one is never handed out", async () => {
    const prepared = createPreparedSandboxes({ maxIdle: 1 });
    const fakes = new Map<string, ReturnType<typeof fakeSandbox>>();
    const startFor = (name: string) => async () => {
      const fake = fakeSandbox();
      fakes.set(name, fake);
      return fake.sandbox;
    };
    for (let i = 0; i < 2; i++) prepared.anticipate(boot("a"), startFor("a"));
    await settle();
    for (let i = 0; i < 2; i++) prepared.anticipate(boot("b"), startFor("b"));
    await settle();
    expect(fakes.get("a")?.state.discarded).toBe(true);
    expect(prepared.idle()).toBe(1);
    const b = fakes.get("b");
    if (b) b.state.exited = true;
    expect(prepared.take(boot("b"))).toBeUndefined();
    expect(b?.state.discarded).toBe(true);
    expect(prepared.stats().discarded).toBe(2);
    await prepared.close();
  });

  test("an untaken sandbox is discarded after idleMs; a boot seen outside the window is not prepared", async () => {
    const prepared = createPreparedSandboxes({ maxIdle: 2, idleMs: 30, repeatWindowMs: 20 });
    const made: ReturnType<typeof fakeSandbox>[] = [];
    const start = async () => {
      const fake = fakeSandbox();
      made.push(fake);
      return fake.sandbox;
    };
    prepared.anticipate(boot("a"), start);
    prepared.anticipate(boot("a"), start);
    await settle();
    expect(prepared.idle()).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(prepared.idle()).toBe(0);
    expect(made.every((fake) => fake.state.discarded)).toBe(true);
    prepared.anticipate(boot("c"), start);
    await new Promise((resolve) => setTimeout(resolve, 40));
    prepared.anticipate(boot("c"), start);
    await settle();
    expect(made).toHaveLength(2);
    await prepared.close();
  });

  test("maxIdle 0 prepares nothing; after close nothing is prepared and the waiting are discarded", async () => {
    const off = createPreparedSandboxes({ maxIdle: 0 });
    let started = 0;
    const start = async () => {
      started++;
      return fakeSandbox().sandbox;
    };
    off.anticipate(boot("a"), start);
    off.anticipate(boot("a"), start);
    await settle();
    expect(started).toBe(0);

    const prepared = createPreparedSandboxes({ maxIdle: 1 });
    const fake = fakeSandbox();
    prepared.anticipate(boot("a"), start);
    prepared.anticipate(boot("a"), async () => fake.sandbox);
    await settle();
    await prepared.close();
    expect(fake.state.discarded).toBe(true);
    prepared.anticipate(boot("a"), start);
    prepared.anticipate(boot("a"), start);
    await settle();
    expect(started).toBe(0);
  });
});
