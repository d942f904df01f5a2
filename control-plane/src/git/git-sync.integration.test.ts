import { GitSkipReason, GitSyncStatus } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createTestRepository, type TestRepository } from "../testing/git-fixtures.js";
import { syncBinding } from "../testing/git-scope.js";
import type { ApiClients } from "../testing/grpc-clients.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { expectCode, globalScope, orgScope } from "../testing/wire.js";

let cp: TestControlPlane;
let world: TenancyWorld;
let root: ApiClients;
const repositories: TestRepository[] = [];
let orgCounter = 0;

beforeAll(async () => {
  cp = await startTestControlPlane({ moduleMaxBytes: 1024 * 1024 });
  world = await createTenancyWorld(cp);
  root = world.as(world.keys.platformAdmin);
});

afterAll(async () => {
  await cp?.close();
  for (const repository of repositories) await repository.remove();
});

async function repository(): Promise<TestRepository> {
  const repo = await createTestRepository();
  repositories.push(repo);
  return repo;
}

/** A fresh organization (a scope holds one binding, so most tests want their own). */
async function organization(): Promise<string> {
  const { organization: org } = await root.organizations.createOrganization({
    name: `git org ${++orgCounter}`,
  });
  return org?.id as string;
}

async function bind(
  scope: ReturnType<typeof orgScope>,
  url: string,
  options: { subfolder?: string; branch?: string } = {},
): Promise<string> {
  const { binding } = await root.git.bindRepository({
    scope,
    repositoryUrl: url,
    branch: options.branch ?? "main",
    subfolder: options.subfolder ?? "",
    credential: undefined,
    pollIntervalSeconds: 0,
  });
  return binding?.id as string;
}

const sync = (id: string) => syncBinding(root, id);

/** The scope's modules straight from PostgreSQL: path → content (and revision). */
async function modulesOf(
  organizationId: string | null,
): Promise<Map<string, { content: string; revision: string }>> {
  const rows = await cp.sql<{ path: string; content: string; revision: string }[]>`
    select path, content, revision from modules
    where organization_id is not distinct from ${organizationId} order by path`;
  return new Map(rows.map((r) => [r.path, { content: r.content, revision: r.revision }]));
}

const contents = (modules: Map<string, { content: string }>) =>
  Object.fromEntries([...modules].map(([path, m]) => [path, m.content]));

async function lastCommitOf(id: string): Promise<string> {
  const { binding } = await root.git.getGitBinding({ id });
  return binding?.lastCommit ?? "";
}

describe("syncing a repository into a scope", () => {
  test("adds, modifies, renames and deletes across commits, leaving unchanged modules untouched", async () => {
    const org = await organization();
    const repo = await repository();
    const first = await repo.commit({
      "shared/halopsa.ts": 'export const base = "https://halo";\n',
      "shared/graph.ts": "export const graph = 1;\n",
      "workflows/old-name.ts": "export const x = 1;\n",
      "README.md": "# not a module\n",
    });
    const id = await bind(orgScope(org), repo.url);
    const initial = await sync(id);
    expect(initial.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);
    expect(initial.commitBefore).toBe("");
    expect(initial.commitAfter).toBe(first);
    expect([...initial.added].sort()).toEqual([
      "shared/graph.ts",
      "shared/halopsa.ts",
      "workflows/old-name.ts",
    ]);
    expect(initial.skipped.map((s) => [s.path, s.reason])).toEqual([
      ["README.md", GitSkipReason.GIT_SKIP_REASON_INVALID_PATH],
    ]);
    const before = await modulesOf(org);

    const second = await repo.commit({
      "shared/halopsa.ts": 'export const base = "https://halo.v2";\n',
      "workflows/old-name.ts": null,
      "workflows/new-name.ts": "export const x = 1;\n",
      "shared/new.ts": "export const n = 1;\n",
    });
    const report = await sync(id);
    expect(report.commitBefore).toBe(first);
    expect(report.commitAfter).toBe(second);
    expect([...report.added].sort()).toEqual(["shared/new.ts", "workflows/new-name.ts"]);
    expect(report.updated).toEqual(["shared/halopsa.ts"]);
    expect(report.deleted).toEqual(["workflows/old-name.ts"]);
    expect(report.unchangedCount).toBe(1);
    const after = await modulesOf(org);
    expect(contents(after)).toEqual({
      "shared/graph.ts": "export const graph = 1;\n",
      "shared/halopsa.ts": 'export const base = "https://halo.v2";\n',
      "shared/new.ts": "export const n = 1;\n",
      "workflows/new-name.ts": "export const x = 1;\n",
    });
    // Untouched: the same row revision, so the cache and runners see no change there.
    expect(after.get("shared/graph.ts")?.revision).toBe(before.get("shared/graph.ts")?.revision);
    expect(await lastCommitOf(id)).toBe(second);

    // A sync with nothing new writes nothing and says so.
    const again = await sync(id);
    expect(again.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);
    expect([again.added, again.updated, again.deleted]).toEqual([[], [], []]);
    expect(again.unchangedCount).toBe(4);
  });

  test("a force-push that rewrites history syncs to the new tree", async () => {
    const org = await organization();
    const repo = await repository();
    const base = await repo.commit({ "a.ts": "export const a = 1;\n" });
    await repo.commit({ "b.ts": "export const b = 1;\n" });
    const id = await bind(orgScope(org), repo.url);
    await sync(id);
    expect(Object.keys(contents(await modulesOf(org)))).toEqual(["a.ts", "b.ts"]);
    await repo.git("reset", "--quiet", "--hard", base);
    const rewritten = await repo.commit({ "c.ts": "export const c = 1;\n" }, "rewritten");
    const report = await sync(id);
    expect(report.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);
    expect(report.commitAfter).toBe(rewritten);
    expect(report.deleted).toEqual(["b.ts"]);
    expect(report.added).toEqual(["c.ts"]);
    expect(Object.keys(contents(await modulesOf(org)))).toEqual(["a.ts", "c.ts"]);
  });

  test("files that cannot be modules are skipped, each with its reason", async () => {
    const org = await organization();
    const repo = await repository();
    const sub = await repository();
    const subCommit = await sub.commit({ "x.ts": "export {};\n" });
    await repo.symlink("bifrost/evil.ts", "/etc/passwd");
    await repo.symlink("bifrost/up.ts", "../../outside.ts");
    await repo.gitlink("bifrost/vendor/lib", subCommit);
    await repo.commit({
      "bifrost/ok.ts": "export const ok = true;\n",
      "bifrost/names..with..dots.ts": "export const dots = true;\n",
      "bifrost/..hidden.ts": "export const hidden = true;\n",
      "bifrost/big.ts": `export const big = "${"x".repeat(5 * 1024 * 1024)}";\n`,
      "bifrost/data.json": Buffer.from([0x7b, 0x00, 0xff, 0x7d]),
      "bifrost/notes.txt": "not code\n",
      "outside.ts": "export const outside = true;\n",
    });
    const id = await bind(orgScope(org), repo.url, { subfolder: "bifrost" });
    const report = await sync(id);
    expect(report.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);
    expect([...report.added].sort()).toEqual(["names..with..dots.ts", "ok.ts"]);
    const reasons = Object.fromEntries(report.skipped.map((s) => [s.path, s.reason]));
    expect(reasons).toEqual({
      "bifrost/evil.ts": GitSkipReason.GIT_SKIP_REASON_SYMLINK,
      "bifrost/up.ts": GitSkipReason.GIT_SKIP_REASON_SYMLINK,
      "bifrost/vendor/lib": GitSkipReason.GIT_SKIP_REASON_SUBMODULE,
      "bifrost/..hidden.ts": GitSkipReason.GIT_SKIP_REASON_INVALID_PATH,
      "bifrost/big.ts": GitSkipReason.GIT_SKIP_REASON_OVERSIZED,
      "bifrost/data.json": GitSkipReason.GIT_SKIP_REASON_BINARY,
      "bifrost/notes.txt": GitSkipReason.GIT_SKIP_REASON_INVALID_PATH,
      "outside.ts": GitSkipReason.GIT_SKIP_REASON_OUTSIDE_SUBFOLDER,
    });
    expect(report.skippedCount).toBe(8);
    const big = report.skipped.find((s) => s.path === "bifrost/big.ts");
    expect(big?.detail).toMatch(/bytes; at most 1048576 bytes are allowed/);
    expect(Object.keys(contents(await modulesOf(org)))).toEqual(["names..with..dots.ts", "ok.ts"]);
  });

  test("an empty repository, a missing branch and an unreachable URL fail clearly and change nothing", async () => {
    const org = await organization();
    const repo = await repository();
    const empty = await repository();
    // An empty repository: nothing to sync yet.
    const emptyId = await bind(orgScope(org), empty.url);
    const emptyReport = await sync(emptyId);
    expect(emptyReport.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
    expect(emptyReport.error).toMatch(/is empty: it has no branches yet/);
    await root.git.unbindRepository({ id: emptyId });

    const good = await repo.commit({ "kept.ts": "export const kept = 1;\n" });
    const id = await bind(orgScope(org), repo.url);
    await sync(id);
    const before = await modulesOf(org);

    await root.git.updateGitBinding({
      id,
      branch: "release",
      credential: undefined,
      clearCredential: false,
      rotateWebhookSecret: false,
    });
    const missing = await sync(id);
    expect(missing.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
    expect(missing.error).toBe(`branch "release" does not exist in ${repo.url}; it has: main`);
    expect(missing.commitBefore).toBe(good);
    expect(await modulesOf(org)).toEqual(before);
    expect(await lastCommitOf(id)).toBe(good);
    const { binding } = await root.git.getGitBinding({ id });
    expect(binding?.lastSyncStatus).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
    expect(binding?.lastSyncError).toMatch(/does not exist/);
    await root.git.unbindRepository({ id });

    const gone = await bind(orgScope(org), `file://${repo.dir}-gone`);
    const unreachable = await sync(gone);
    expect(unreachable.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
    expect(unreachable.error).toMatch(/is not reachable or does not exist/);
    expect(await modulesOf(org)).toEqual(before);
    await root.git.unbindRepository({ id: gone });

    const closed = await bind(orgScope(org), "http://127.0.0.1:9/nothing.git");
    const refused = await sync(closed);
    expect(refused.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
    expect(refused.error).toMatch(/not reachable/);
    expect(await modulesOf(org)).toEqual(before);
  });
});

describe("bound scopes", () => {
  test("modules of a bound scope are read-only through the API; unbinding leaves them API-managed", async () => {
    const org = await organization();
    const other = await organization();
    const repo = await repository();
    await repo.commit({ "shared/a.ts": "export const a = 1;\n" });
    const id = await bind(orgScope(org), repo.url);
    await sync(id);
    const message = await expectCode(
      root.modules.putModule({ scope: orgScope(org), path: "shared/a.ts", content: "x" }),
      status.FAILED_PRECONDITION,
    );
    expect(message).toContain(`is bound to git repository "${repo.url}" (binding ${id})`);
    await expectCode(
      root.modules.putModule({ scope: orgScope(org), path: "shared/new.ts", content: "x" }),
      status.FAILED_PRECONDITION,
    );
    await expectCode(
      root.modules.deleteModule({ scope: orgScope(org), path: "shared/a.ts" }),
      status.FAILED_PRECONDITION,
    );
    // Another organization and the global scope are not bound by it.
    await root.modules.putModule({ scope: orgScope(other), path: "shared/a.ts", content: "o" });
    await root.modules.putModule({ scope: globalScope, path: "git-test/g.ts", content: "g" });
    await root.modules.deleteModule({ scope: globalScope, path: "git-test/g.ts" });

    await root.git.unbindRepository({ id });
    expect(contents(await modulesOf(org))).toEqual({ "shared/a.ts": "export const a = 1;\n" });
    await root.modules.putModule({ scope: orgScope(org), path: "shared/a.ts", content: "api" });
    expect(contents(await modulesOf(org))).toEqual({ "shared/a.ts": "api" });

    // Bound again, the first sync makes the scope equal to the tree once more.
    const again = await bind(orgScope(org), repo.url);
    const report = await sync(again);
    expect(report.updated).toEqual(["shared/a.ts"]);
    expect(contents(await modulesOf(org))).toEqual({ "shared/a.ts": "export const a = 1;\n" });
  });

  test("a repository binds to one scope, and a scope holds one repository", async () => {
    const orgA = await organization();
    const orgB = await organization();
    const repo = await repository();
    const id = await bind(orgScope(orgA), `${repo.url}.git`, { subfolder: "customers/a" });
    // The same repository, spelled differently, at the same folder: refused, naming the binding.
    const same = await expectCode(
      bind(orgScope(orgB), `${repo.url}/`, { subfolder: "/customers/a/" }),
      status.ALREADY_EXISTS,
    );
    expect(same).toContain(`is already bound to organization "${orgA}" (binding ${id})`);
    // A folder containing or inside the bound one would put the same files in two scopes.
    await expectCode(bind(orgScope(orgB), repo.url), status.ALREADY_EXISTS);
    await expectCode(
      bind(orgScope(orgB), repo.url, { subfolder: "customers/a/inner" }),
      status.ALREADY_EXISTS,
    );
    // A sibling folder is another set of files.
    const sibling = await bind(orgScope(orgB), repo.url, { subfolder: "customers/b" });
    // A second repository for a bound scope: refused, naming the binding.
    const other = await repository();
    const second = await expectCode(bind(orgScope(orgA), other.url), status.FAILED_PRECONDITION);
    expect(second).toContain(`is already bound to repository "${repo.url}.git" (binding ${id})`);
    const rows = await cp.sql`select id from git_bindings where id in ${cp.sql([id, sibling])}`;
    expect(rows.length).toBe(2);
    // The database holds the rule even without the checks in front of it.
    await expect(
      cp.sql`insert into git_bindings (organization_id, repository_url, repository_key, branch,
          webhook_key_id, webhook_nonce, webhook_ciphertext)
        select organization_id, 'x', 'y', 'main', webhook_key_id, webhook_nonce, webhook_ciphertext
        from git_bindings where id = ${id}`,
    ).rejects.toThrow(/git_bindings_scope_key/);
  });

  test("an organization admin refused a bound repository does not learn which organization holds it", async () => {
    const repoUrl = "https://git.example.test/acme/shared-automation.git";
    const held = await root.git.bindRepository({
      scope: orgScope(world.orgA.id),
      repositoryUrl: repoUrl,
      branch: "main",
      subfolder: "",
      credential: undefined,
      pollIntervalSeconds: 0,
    });
    try {
      const attempt = world.as(world.keys.adminB).git.bindRepository({
        scope: orgScope(world.orgB.id),
        repositoryUrl: repoUrl,
        branch: "main",
        subfolder: "",
        credential: undefined,
        pollIntervalSeconds: 0,
      });
      const message = await expectCode(attempt, status.ALREADY_EXISTS);
      expect(message).toContain("is already bound to another scope");
      expect(message).not.toContain(world.orgA.id);
      expect(message).not.toContain(held.binding?.id as string);
      // Its own admin (and a platform admin) is told exactly where.
      const own = await expectCode(
        world.as(world.keys.adminA).git.bindRepository({
          scope: orgScope(world.orgA.id),
          repositoryUrl: `${repoUrl}/`,
          branch: "main",
          subfolder: "",
          credential: undefined,
          pollIntervalSeconds: 0,
        }),
        status.FAILED_PRECONDITION,
      );
      expect(own).toContain(held.binding?.id as string);
    } finally {
      await root.git.unbindRepository({ id: held.binding?.id as string });
    }
  });

  test("bad binding requests are refused, naming the value and what is allowed", async () => {
    const org = await organization();
    const bad = (url: string, extra: { branch?: string; subfolder?: string } = {}) =>
      expectCode(bind(orgScope(org), url, extra), status.INVALID_ARGUMENT);
    expect(await bad("ftp://example.test/x.git")).toMatch(/scheme "ftp"/);
    expect(await bad("https://user:pw@example.test/x.git")).toMatch(/must not contain credentials/);
    expect(await bad("not a url")).toMatch(/without spaces/);
    expect(await bad("https://example.test/x.git", { branch: "../main" })).toMatch(/branch/);
    expect(await bad("https://example.test/x.git", { subfolder: "a/../b" })).toMatch(/subfolder/);
    expect(await bad("https://example.test/x.git", { branch: "-delete" })).toMatch(/branch/);
    const { bindings } = await root.git.listGitBindings({ scope: orgScope(org) });
    expect(bindings).toEqual([]);
  });
});

describe("listing bindings", () => {
  test("each binding shows its own last run; an organization sees only its own binding", async () => {
    const [orgA, orgB] = [await organization(), await organization()];
    const good = await repository();
    await good.commit({ "shared/x.ts": "export const x = 1;\n" });
    const a = await bind(orgScope(orgA), good.url);
    const b = await bind(orgScope(orgB), (await repository()).url, { branch: "missing" });
    expect((await sync(a)).status).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);
    const failed = await sync(b);
    expect(failed.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);

    const { bindings: all } = await root.git.listGitBindings({ scope: undefined });
    const byId = new Map(all.map((binding) => [binding.id, binding]));
    expect(byId.get(a)).toMatchObject({
      lastSyncStatus: GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED,
      lastSyncError: "",
    });
    expect(byId.get(b)?.lastSyncStatus).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
    expect(byId.get(b)?.lastSyncError).toBe(failed.error);
    expect(failed.error).not.toBe("");

    const { bindings: onlyA } = await root.git.listGitBindings({ scope: orgScope(orgA) });
    expect(onlyA.map((binding) => binding.id)).toEqual([a]);
    await root.git.unbindRepository({ id: a });
    await root.git.unbindRepository({ id: b });
  });
});

describe("one sync at a time", () => {
  test("concurrent sync requests for one binding run once", async () => {
    const org = await organization();
    const repo = await repository();
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) files[`m/file-${i}.ts`] = `export const v = ${i};\n`;
    await repo.commit(files);
    const id = await bind(orgScope(org), repo.url);
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => root.git.syncGitBinding({ id })),
    );
    const ids = new Set(responses.map((r) => r.sync?.id));
    expect(ids.size).toBe(1);
    expect(responses.filter((r) => r.joined).length).toBe(4);
    const { syncs } = await root.git.listGitSyncs({ bindingId: id, pageSize: 0, pageToken: "" });
    expect(syncs.length).toBe(1);
    expect(syncs[0]?.added.length).toBe(200);
  });

  test("two replicas syncing one binding at once run it once", async () => {
    const { createGitSyncer } = await import("./git-sync.js");
    const { systemActor } = await import("../audit/audit-log.js");
    const replica = createGitSyncer({
      sql: cp.sql,
      modules: cp.stores.modules,
      bindings: cp.stores.gitBindings,
      syncs: cp.stores.gitSyncs,
      log: (await import("../log.js")).createLogger({ name: "replica", level: "silent" }),
      settings: {
        allowedSchemes: ["file"],
        allowPrivateHosts: true,
        timeoutMs: 20_000,
        maxFiles: 5_000,
        moduleMaxBytes: 1024 * 1024,
        workDir: `${cp.workDir}/replica`,
      },
      onModulesChanged: () => {},
    });
    const org = await organization();
    const repo = await repository();
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`r/file-${i}.ts`] = `export const v = ${i};\n`;
    await repo.commit(files);
    const id = await bind(orgScope(org), repo.url);
    const [mine, theirs] = await Promise.all([
      cp.gitSyncer.sync(id, "manual", systemActor),
      replica.sync(id, "manual", systemActor),
    ]);
    expect([mine.joined, theirs.joined].sort()).toEqual([false, true]);
    expect(mine.sync?.id).toBe(theirs.sync?.id);
    const [count] = await cp.sql<{ n: number }[]>`
      select count(*)::int as n from git_syncs where binding_id = ${id}`;
    expect(count?.n).toBe(1);
    expect((await modulesOf(org)).size).toBe(300);
  });
});

describe("size", () => {
  test("a 1,000-file repository syncs whole, and a 10-file change rewrites only those 10 modules", async () => {
    const org = await organization();
    const repo = await repository();
    const files: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) {
      files[`lib/dir-${i % 20}/module-${i}.ts`] = `export const value${i} = ${i};\n`;
    }
    await repo.commit(files);
    const id = await bind(orgScope(org), repo.url);
    const initial = await sync(id);
    expect(initial.added.length).toBe(1000);
    const before = await modulesOf(org);
    expect(before.size).toBe(1000);

    const change: Record<string, string | null> = {};
    for (let i = 0; i < 8; i++)
      change[`lib/dir-${i}/module-${i}.ts`] = `export const changed = ${i};\n`;
    change["lib/dir-0/module-980.ts"] = null;
    change["lib/new/added.ts"] = "export const added = true;\n";
    await repo.commit(change);
    const report = await sync(id);
    expect(report.updated.length).toBe(8);
    expect(report.deleted).toEqual(["lib/dir-0/module-980.ts"]);
    expect(report.added).toEqual(["lib/new/added.ts"]);
    expect(report.unchangedCount).toBe(991);
    const after = await modulesOf(org);
    const rewritten = [...after].filter(([path, m]) => before.get(path)?.revision !== m.revision);
    expect(rewritten.map(([path]) => path).sort()).toEqual(
      [...Object.keys(change).filter((p) => change[p] !== null)].sort(),
    );
  });
});
