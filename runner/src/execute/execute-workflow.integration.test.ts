import { createHash, randomUUID } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builtSdkEntry } from "@bifrost/sdk/host";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ExecutionServices } from "../channel/sdk-channel.js";
import { findExecutable, locateDenoBinary } from "../sandbox/deno-binary.js";
import { defaultProcessLimits } from "../sandbox/resource-limits.js";
import { createSandboxHost } from "../sandbox/sandbox-process.js";
import { prepareSandboxRoot } from "../sandbox/sandbox-root.js";
import { discoverModules } from "./discover-modules.js";
import {
  type ExecutionSpec,
  type ExecutorDeps,
  executeWorkflow,
  executionBoot,
} from "./execute-workflow.js";
import { createExecutorDeps } from "./index.js";
import { createPreparedSandboxes } from "./prepared-sandboxes.js";
import { type BootedSandbox, bootSandboxJob } from "./sandbox-job.js";
import { bundleSdk } from "./sdk-bundle.js";

// The same path in three scopes, and global workflows that import it by workspace path and
// by relative import. Module state (a counter) shows whether anything survives between runs.
const halopsa = (who: string) => `
let calls = 0;
export function halo() { calls += 1; return { who: ${JSON.stringify(who)}, calls }; }
`;
const globalFiles: Record<string, string> = {
  "shared/halopsa.ts": halopsa("global"),
  "workflows/by-path.ts": `
import { workflow } from "bifrost";
import { halo } from "shared/halopsa.ts";
export const byPath = workflow({ name: "by_path" }, async (_p, ctx) => {
  const previous = await ctx.variables.get("seen");
  await ctx.variables.set("seen", ctx.organization.id);
  return { ...halo(), org: ctx.organization.id, previous: previous ?? null };
});`,
  "workflows/nested/by-relative.ts": `
import { workflow } from "bifrost";
import { halo } from "../../shared/halopsa.ts";
export const byRelative = workflow({ name: "by_relative" }, () => halo());`,
  "workflows/secretive.ts": `
import { workflow } from "bifrost";
export const secretive = workflow({ name: "secretive" }, async (_p, ctx) => {
  const token = await ctx.secrets.get("halo.token");
  ctx.log.info("using token " + token);
  console.log("stdout also sees " + token);
  return { echoed: token };
});`,
  "workflows/slow.ts": `
import { workflow } from "bifrost";
export const stuck = workflow({ name: "stuck" }, () => new Promise(() => {}));
export const slow = workflow({ name: "slow" }, () => new Promise(() => { setInterval(() => {}, 1000); }));`,
  "workflows/bad.ts": `
import { UserError, workflow } from "bifrost";
export const rejects = workflow({ name: "rejects" }, () => { throw new UserError("no mailbox for a@b.co"); });
export const dated = workflow({ name: "dated" }, () => ({ when: new Date() }));`,
  "workflows/exits.ts": `Deno.exit(7);`,
  "workflows/chatty.ts": `
import { workflow } from "bifrost";
export const chatty = workflow({ name: "chatty" }, () => {
  for (let i = 0; i < 1500; i++) console.log("line " + i + " " + "x".repeat(60));
  return { printed: 1500 };
});`,
  "workflows/broken.ts": `import { workflow } from "bifrost"; export const x = workflow({ name: "x" }, () => {`,
};
const orgFiles: Record<"a" | "b" | "c", Record<string, string>> = {
  a: { "shared/halopsa.ts": halopsa("org A") },
  b: { "shared/halopsa.ts": halopsa("org B") },
  c: {},
};

let root: string;
let deps: ExecutorDeps;
const contents = new Map<string, string>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "bifrost-exec-test-"));
  await chmod(root, 0o711);
  for (const dir of ["trees", "deno-dirs", "jobs"]) {
    await mkdir(join(root, dir));
    await chmod(join(root, dir), 0o711);
  }
  const deno = await locateDenoBinary();
  const sdkDir = await bundleSdk(builtSdkEntry(), join(root, "sdk"));
  deps = {
    host: await createSandboxHost({ warn: () => {} }),
    deno,
    bwrapPath: findExecutable("bwrap"),
    rootDir: await prepareSandboxRoot({ parent: root, deno, sdkDir }),
    trees: { root: join(root, "trees"), fetchContent: async (hash) => contents.get(hash) ?? "" },
    denoDirs: join(root, "deno-dirs"),
    jobs: join(root, "jobs"),
    limits: defaultProcessLimits,
    heapLimitMb: 128,
  };
});

afterAll(async () => {
  await deps?.host.close();
  await rm(root, { recursive: true, force: true });
});

const orgIds = { a: randomUUID(), b: randomUUID(), c: randomUUID() };

/** The effective view of an org: global files with its own laid over them, like the control plane's. */
function view(org: keyof typeof orgFiles) {
  const files = { ...globalFiles, ...orgFiles[org] };
  const entries = Object.entries(files).map(([path, content]) => {
    const contentHash = createHash("sha256").update(content).digest("hex");
    contents.set(contentHash, content);
    return { path, contentHash };
  });
  const fingerprint = createHash("sha256").update(JSON.stringify(entries)).digest("hex");
  return { fingerprint, entries };
}

const importMap = {
  imports: {
    bifrost: "file:///sdk/mod.js",
    "shared/": "file:///workspace/shared/",
    "workflows/": "file:///workspace/workflows/",
  },
};

function recorder(secrets: Record<string, string> = {}) {
  const logs: Array<{ level: string; message: string; data?: unknown }> = [];
  const variables = new Map<string, unknown>();
  const services: ExecutionServices = {
    getConfig: async () => ({ found: false }),
    getSecret: async (name) =>
      name in secrets ? { found: true, value: secrets[name] as string } : { found: false },
    getVariable: async (name) =>
      variables.has(name) ? { found: true, value: variables.get(name) } : { found: false },
    setVariable: async (name, value) => {
      variables.set(name, value);
    },
    log: (entry) => logs.push(entry),
    checkpoint: () => {},
  };
  return { services, logs, variables };
}

function spec(
  org: keyof typeof orgFiles,
  module: string,
  name: string,
  timeoutSeconds = 30,
): ExecutionSpec {
  return {
    executionId: randomUUID(),
    organization: { id: orgIds[org], name: `Org ${org.toUpperCase()}` },
    startedBy: { id: "user-1", name: "User One", email: "one@example.test" },
    workflow: { name, module, network: [], timeoutSeconds },
    params: {},
    view: view(org),
    importMap,
    organizationHosts: [],
  };
}

describe("a global workflow run for different organizations", () => {
  test("imports each organization's override by workspace path, and the global module where there is none", async () => {
    const results: Record<string, unknown> = {};
    for (const org of ["a", "b", "c"] as const) {
      const outcome = await executeWorkflow(
        deps,
        spec(org, "workflows/by-path.ts", "by_path"),
        recorder().services,
      );
      expect(outcome.status, JSON.stringify(outcome)).toBe("succeeded");
      results[org] = outcome.status === "succeeded" ? outcome.result : undefined;
    }
    expect(results.a).toEqual({ who: "org A", calls: 1, org: orgIds.a, previous: null });
    expect(results.b).toEqual({ who: "org B", calls: 1, org: orgIds.b, previous: null });
    expect(results.c).toEqual({ who: "global", calls: 1, org: orgIds.c, previous: null });
  });

  test("resolves a relative import to the same organization's override", async () => {
    for (const [org, who] of [
      ["a", "org A"],
      ["b", "org B"],
      ["c", "global"],
    ] as const) {
      const outcome = await executeWorkflow(
        deps,
        spec(org, "workflows/nested/by-relative.ts", "by_relative"),
        recorder().services,
      );
      expect(outcome.status === "succeeded" && outcome.result).toEqual({ who, calls: 1 });
    }
  });

  test("A, then B, then A on the same runner share no module state, context or variables", async () => {
    const runs = [];
    for (const org of ["a", "b", "a"] as const) {
      const record = recorder();
      const outcome = await executeWorkflow(
        deps,
        spec(org, "workflows/by-path.ts", "by_path"),
        record.services,
      );
      runs.push(outcome.status === "succeeded" ? outcome.result : outcome);
    }
    expect(runs).toEqual([
      { who: "org A", calls: 1, org: orgIds.a, previous: null },
      { who: "org B", calls: 1, org: orgIds.b, previous: null },
      { who: "org A", calls: 1, org: orgIds.a, previous: null },
    ]);
  });
});

describe("the job's files", () => {
  test("sandboxes of one boot share its job directory, written once; each gets its own socket, removed after", async () => {
    const jobs = join(root, "jobs");
    const listing = async () => (await readdir(jobs)).filter((name) => !name.startsWith("."));
    const before = new Set(await listing());
    for (let i = 0; i < 2; i++) {
      const outcome = await executeWorkflow(
        deps,
        spec("a", "workflows/by-path.ts", "by_path"),
        recorder().services,
      );
      expect(outcome.status).toBe("succeeded");
    }
    await executeWorkflow(
      deps,
      spec("b", "workflows/nested/by-relative.ts", "by_relative"),
      recorder().services,
    );
    // The socket directory goes once the result is out; wait for that cleanup.
    for (let i = 0; i < 100 && (await listing()).some((n) => n.startsWith("socket-")); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const added = (await listing()).filter((name) => !before.has(name));
    expect(added.filter((name) => name.startsWith("socket-"))).toEqual([]);
    // One directory per distinct (import map, entry), whichever org: it names no org and
    // holds no secret. A first run in this file may have written the by-path one already.
    const jobDirs = (await listing()).filter((name) => name.startsWith("job-"));
    const entries = await Promise.all(
      jobDirs.map((name) => readFile(join(jobs, name, "entry.js"), "utf8")),
    );
    for (const module of ["workflows/by-path.ts", "workflows/nested/by-relative.ts"]) {
      expect(entries.filter((entry) => entry.includes(module))).toHaveLength(1);
    }
    for (const name of jobDirs) {
      expect((await readdir(join(jobs, name))).sort()).toEqual(["entry.js", "import_map.json"]);
      expect((await stat(join(jobs, name))).mode & 0o777).toBe(0o755);
      expect((await stat(join(jobs, name, "entry.js"))).mode & 0o777).toBe(0o444);
    }
  });
});

describe("sandboxes prepared ahead of repeating jobs", () => {
  test("a repeated job runs in a sandbox started for it, still one fresh process per execution, and never another org's", async () => {
    const prepared = createPreparedSandboxes({ maxIdle: 2, repeatWindowMs: 60_000 });
    const withPrepared: ExecutorDeps = { ...deps, prepared };
    try {
      const run = async (org: "a" | "b") => {
        const outcome = await executeWorkflow(
          withPrepared,
          spec(org, "workflows/by-path.ts", "by_path"),
          recorder().services,
        );
        return outcome.status === "succeeded" ? outcome.result : outcome;
      };
      // The first run of a boot prepares nothing; the second prepares two for what follows.
      expect(await run("a")).toEqual({ who: "org A", calls: 1, org: orgIds.a, previous: null });
      expect(prepared.idle()).toBe(0);
      expect(await run("a")).toEqual({ who: "org A", calls: 1, org: orgIds.a, previous: null });
      await waitFor(() => prepared.idle() === 2);
      // B's job does not take A's prepared sandboxes: it gets its own tree and modules.
      expect(await run("b")).toEqual({ who: "org B", calls: 1, org: orgIds.b, previous: null });
      expect(prepared.idle()).toBe(2);
      // A's next job takes it: module state starts from nothing (its modules load only now).
      expect(await run("a")).toEqual({ who: "org A", calls: 1, org: orgIds.a, previous: null });
      await waitFor(() => prepared.idle() >= 1);
      expect(await run("a")).toEqual({ who: "org A", calls: 1, org: orgIds.a, previous: null });
    } finally {
      await prepared.close();
    }
    expect(prepared.idle()).toBe(0);
  });

  test("a changed tree (another fingerprint) never gets the sandbox prepared for the old one", async () => {
    const prepared = createPreparedSandboxes({ maxIdle: 1 });
    const withPrepared: ExecutorDeps = { ...deps, prepared };
    try {
      for (let i = 0; i < 2; i++) {
        await executeWorkflow(
          withPrepared,
          spec("b", "workflows/by-path.ts", "by_path"),
          recorder().services,
        );
      }
      await waitFor(() => prepared.idle() === 1);
      const changed = spec("b", "workflows/by-path.ts", "by_path");
      const override = halopsa("org B, changed");
      const hash = createHash("sha256").update(override).digest("hex");
      contents.set(hash, override);
      const entries = changed.view.entries.map((entry) =>
        entry.path === "shared/halopsa.ts" ? { path: entry.path, contentHash: hash } : entry,
      );
      changed.view = { fingerprint: `${changed.view.fingerprint}-changed`, entries };
      const outcome = await executeWorkflow(withPrepared, changed, recorder().services);
      expect(outcome.status === "succeeded" && outcome.result).toMatchObject({
        who: "org B, changed",
      });
      // The old boot's sandbox is still waiting, unused.
      expect(prepared.idle()).toBe(1);
    } finally {
      await prepared.close();
    }
  });
});

describe("a sandbox started before the claim (from the job's boot hint)", () => {
  /** The early sandbox for a spec, recording whether it was run or discarded. */
  function earlyFor(of: ExecutionSpec) {
    const used = { ran: false, discarded: false };
    const boot = executionBoot(of);
    const sandbox = bootSandboxJob(deps, boot).then(
      (booted): BootedSandbox => ({
        get exited() {
          return booted.exited;
        },
        run: (...args) => {
          used.ran = true;
          return booted.run(...args);
        },
        discard: () => {
          used.discarded = true;
          return booted.discard();
        },
      }),
    );
    return { early: { boot, sandbox }, used };
  }

  test("is used when the claim's boot is the same", async () => {
    const job = spec("a", "workflows/by-path.ts", "by_path");
    const { early, used } = earlyFor(job);
    const outcome = await executeWorkflow(deps, job, recorder().services, undefined, early);
    expect(outcome.status === "succeeded" && outcome.result).toMatchObject({ who: "org A" });
    expect(used).toEqual({ ran: true, discarded: false });
  });

  test("is discarded unused when the claim says otherwise (another org, tree or workflow)", async () => {
    const hinted = spec("a", "workflows/by-path.ts", "by_path");
    for (const claimed of [
      spec("b", "workflows/by-path.ts", "by_path"),
      spec("a", "workflows/nested/by-relative.ts", "by_relative"),
    ]) {
      const { early, used } = earlyFor(hinted);
      const outcome = await executeWorkflow(deps, claimed, recorder().services, undefined, early);
      expect(outcome.status, JSON.stringify(outcome)).toBe("succeeded");
      expect(used).toEqual({ ran: false, discarded: true });
    }
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}

describe("output and the result", () => {
  test("everything printed before the workflow returned is in its logs (~100 KB, more than a pipe holds)", async () => {
    for (let run = 0; run < 5; run++) {
      const record = recorder();
      const outcome = await executeWorkflow(
        deps,
        spec("a", "workflows/chatty.ts", "chatty"),
        record.services,
      );
      expect(outcome.status === "succeeded" && outcome.result).toEqual({ printed: 1500 });
      const lines = record.logs.filter((log) => log.message.startsWith("line "));
      expect(lines).toHaveLength(1500);
      expect(lines[1499]?.message).toMatch(/^line 1499 x{60}$/);
    }
  });
});

describe("outcomes", () => {
  test("secret values are redacted from SDK logs, stdout and the result", async () => {
    const record = recorder({ "halo.token": "tok-very-secret" });
    const outcome = await executeWorkflow(
      deps,
      spec("a", "workflows/secretive.ts", "secretive"),
      record.services,
    );
    expect(outcome.status === "succeeded" && outcome.result).toEqual({ echoed: "[redacted]" });
    expect(JSON.stringify(record.logs)).not.toContain("tok-very-secret");
    expect(record.logs.map((l) => l.message)).toEqual(
      expect.arrayContaining(["using token [redacted]", "stdout also sees [redacted]"]),
    );
  });

  test("a user error fails the execution with the SDK's classification", async () => {
    const outcome = await executeWorkflow(
      deps,
      spec("a", "workflows/bad.ts", "rejects"),
      recorder().services,
    );
    expect(outcome.status).toBe("failed");
    expect(outcome.status !== "succeeded" && outcome.error).toMatchObject({
      message: "no mailbox for a@b.co",
      retryable: false,
    });
  });

  test("a result that is not JSON fails with a message naming the value", async () => {
    const outcome = await executeWorkflow(
      deps,
      spec("a", "workflows/bad.ts", "dated"),
      recorder().services,
    );
    expect(outcome.status).toBe("failed");
    expect(outcome.status !== "succeeded" && outcome.error.message).toMatch(/when/);
  });

  test("a workflow awaiting a promise nothing can settle fails at once, saying so", async () => {
    const outcome = await executeWorkflow(
      deps,
      spec("a", "workflows/slow.ts", "stuck", 30),
      recorder().services,
    );
    expect(outcome.status).toBe("failed");
    expect(outcome.status !== "succeeded" && outcome.error.message).toMatch(/never finished/);
    expect(outcome.sandbox.timedOut).toBe(false);
  });

  test("a workflow that never resolves is killed at its timeout", async () => {
    const outcome = await executeWorkflow(
      deps,
      spec("a", "workflows/slow.ts", "slow", 2),
      recorder().services,
    );
    expect(outcome.status).toBe("timed_out");
    expect(outcome.status !== "succeeded" && outcome.error.message).toBe(
      "execution exceeded its 2 s timeout and was killed",
    );
  });

  test("a cancelled execution is stopped and reported as cancelled", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 500);
    const outcome = await executeWorkflow(
      deps,
      spec("a", "workflows/slow.ts", "slow"),
      recorder().services,
      controller.signal,
    );
    expect(outcome.status).toBe("cancelled");
  });
});

describe("discovery", () => {
  test("reports every workflow of the modules, and a module that fails to load without hiding the others", async () => {
    const report = await discoverModules(deps, {
      treeOwner: "global",
      view: view("c"),
      importMap,
      modules: [
        "workflows/by-path.ts",
        "workflows/bad.ts",
        "workflows/broken.ts",
        "shared/halopsa.ts",
      ],
      moduleTimeoutMs: 5_000,
    });
    expect(report.workflows.map((w) => [w.name, w.module, w.exportName]).sort()).toEqual([
      ["by_path", "workflows/by-path.ts", "byPath"],
      ["dated", "workflows/bad.ts", "dated"],
      ["rejects", "workflows/bad.ts", "rejects"],
    ]);
    expect(report.errors.map((e) => e.module)).toEqual(["workflows/broken.ts"]);
    expect(report.errors[0]?.message).toMatch(/broken\.ts/);
  });
});

test("a module that ends the discovery process is isolated: the others are still discovered", async () => {
  const report = await discoverModules(deps, {
    treeOwner: "global",
    view: view("c"),
    importMap,
    modules: ["workflows/exits.ts", "workflows/by-path.ts"],
    moduleTimeoutMs: 5_000,
  });
  expect(report.workflows.map((w) => w.name)).toEqual(["by_path"]);
  expect(report.errors).toEqual([
    {
      module: "workflows/exits.ts",
      message: "the discovery process exited with code 7 without a report",
    },
  ]);
});

test("a runner started under umask 077 makes its work dir reachable and runs each organization's workflow", async () => {
  // An operator's umask passes through every mode the runner asks mkdir, open and writeFile
  // for; the sandbox runs as another uid, so each directory and file it needs is set
  // explicitly. The work dir's missing parents are the runner's to make, too.
  const parent = await mkdtemp(join(tmpdir(), "bifrost-umask-test-"));
  await chmod(parent, 0o711);
  const workDir = join(parent, "made", "by", "runner");
  const previous = process.umask(0o077);
  let strict: ExecutorDeps | undefined;
  try {
    strict = await createExecutorDeps({
      workDir,
      fetchContent: async (hash) => contents.get(hash) ?? "",
      logger: { warn: () => {} },
    });
    for (const dir of [join(parent, "made"), join(parent, "made", "by"), workDir]) {
      expect((await stat(dir)).mode & 0o777).toBe(0o711);
    }
    for (const [org, who] of [
      ["a", "org A"],
      ["b", "org B"],
      ["c", "global"],
    ] as const) {
      const outcome = await executeWorkflow(
        strict,
        spec(org, "workflows/by-path.ts", "by_path"),
        recorder().services,
      );
      expect(outcome.status, JSON.stringify(outcome)).toBe("succeeded");
      expect(outcome.status === "succeeded" && outcome.result).toMatchObject({ who });
    }
  } finally {
    process.umask(previous);
    await strict?.host.close();
    await rm(parent, { recursive: true, force: true });
  }
});
