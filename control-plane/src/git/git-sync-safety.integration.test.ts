import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GitCredentialKind, GitSyncStatus, Provenance } from "@bifrost/proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { systemActor } from "../audit/audit-log.js";
import {
  createTestRepository,
  startGitHttpServer,
  type TestRepository,
} from "../testing/git-fixtures.js";
import { scopeContents, syncBinding } from "../testing/git-scope.js";
import type { ApiClients } from "../testing/grpc-clients.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";

/** How the next sync dies right before its COMMIT, once everything is written. */
let killNextSync: "throw" | "terminate session" | undefined;
let cp: TestControlPlane;
let world: TenancyWorld;
let root: ApiClients;
const repositories: TestRepository[] = [];
let orgCounter = 0;

beforeAll(async () => {
  cp = await startTestControlPlane({
    moduleMaxBytes: 1024 * 1024,
    gitHooks: {
      async beforeCommit(tx) {
        const how = killNextSync;
        killNextSync = undefined;
        if (how === "throw") throw new Error("the control plane died before the commit");
        if (how === "terminate session") {
          // The database session goes away under the open transaction (PostgreSQL restarted,
          // an operator's pg_terminate_backend): the COMMIT that follows cannot succeed.
          const [session] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
          await cp.sql`select pg_terminate_backend(${session?.pid as number})`;
        }
      },
    },
  });
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

async function organization(): Promise<string> {
  const { organization: org } = await root.organizations.createOrganization({
    name: `git safety org ${++orgCounter}`,
  });
  return org?.id as string;
}

async function bind(scope: ReturnType<typeof orgScope>, url: string, token?: string) {
  const { binding, webhookSecret } = await root.git.bindRepository({
    scope,
    repositoryUrl: url,
    branch: "main",
    subfolder: "",
    credential: token ? { kind: { $case: "token", value: token } } : undefined,
    pollIntervalSeconds: 0,
  });
  return { id: binding?.id as string, binding, webhookSecret };
}

const sync = (id: string) => syncBinding(root, id);

const contentsOf = (organizationId: string | null) => scopeContents(cp.sql, organizationId);

describe("a sync that cannot finish", () => {
  test.each(["throw", "terminate session"] as const)(
    "dying before its commit (%s) leaves the scope at the previous commit, consistent",
    async (how) => {
      const org = await organization();
      const repo = await repository();
      const first = await repo.commit({ "a.ts": "export const a = 1;\n", "b.ts": "export {};\n" });
      const { id } = await bind(orgScope(org), repo.url);
      await sync(id);
      const before = await contentsOf(org);
      const view = await root.modules.getEffectiveView({
        organizationId: org,
        knownFingerprint: "",
      });

      await repo.commit({ "a.ts": "export const a = 2;\n", "b.ts": null, "c.ts": "export {};\n" });
      killNextSync = how;
      const report = await sync(id);
      expect(report.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
      expect(report.error).toMatch(
        how === "throw"
          ? /sync failed: the control plane died/
          : /sync failed: .*(CONNECTION|terminat|ECONNRESET)/i,
      );
      expect(await contentsOf(org)).toEqual(before);
      const { binding } = await root.git.getGitBinding({ id });
      expect(binding?.lastCommit).toBe(first);
      const still = await root.modules.getEffectiveView({
        organizationId: org,
        knownFingerprint: view.fingerprint,
      });
      expect(still.unchanged).toBe(true);

      // The next sync applies the commit whole.
      const retry = await sync(id);
      expect(retry.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);
      expect(retry.commitBefore).toBe(first);
      expect(await contentsOf(org)).toEqual({
        "a.ts": "export const a = 2;\n",
        "c.ts": "export {};\n",
      });
    },
  );

  test("a run left running by a control plane that stopped is reported interrupted by the next sync", async () => {
    const org = await organization();
    const repo = await repository();
    await repo.commit({ "a.ts": "export {};\n" });
    const { id } = await bind(orgScope(org), repo.url);
    const [stale] = await cp.sql<{ id: string }[]>`
      insert into git_syncs (binding_id, organization_id, trigger, status)
      values (${id}, ${org}, 'manual', 'running') returning id`;
    const report = await sync(id);
    expect(report.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);
    const { sync: old } = await root.git.getGitSync({ id: stale?.id as string });
    expect(old?.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
    expect(old?.error).toMatch(/^interrupted/);
  });
});

describe("credentials", () => {
  test("a wrong token fails the sync; the right one syncs; neither is ever returned", async () => {
    const served = await mkdtemp(join(tmpdir(), "bifrost-git-http-"));
    const server = await startGitHttpServer(served, "s3cret-token");
    try {
      const repo = await repository();
      await repo.commit({ "private.ts": "export const p = 1;\n" });
      await repo.git("clone", "--quiet", "--bare", repo.dir, join(served, "private.git"));
      const org = await organization();
      const { id, binding } = await bind(orgScope(org), server.urlOf("private.git"), "wrong");
      expect(binding?.credentialKind).toBe(GitCredentialKind.GIT_CREDENTIAL_KIND_TOKEN);
      const before = server.requests();
      const refused = await sync(id);
      const perFetch = server.requests() - before;
      expect(refused.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
      expect(refused.error).toMatch(
        /^authentication to http:\/\/127\.0\.0\.1:\d+\/private\.git failed/,
      );
      expect(refused.error).not.toContain("wrong");
      expect(await contentsOf(org)).toEqual({});

      // A scheduled poll that is refused records the same failure, asking the remote once.
      const { sync: polled } = await cp.gitSyncer.sync(id, "schedule", systemActor);
      expect(server.requests() - before).toBe(2 * perFetch);
      expect(polled?.status).toBe("failed");
      expect(polled?.error).toMatch(/^authentication to .* failed/);
      expect(polled?.error).not.toContain("wrong");

      await root.git.updateGitBinding({
        id,
        credential: { kind: { $case: "token", value: "s3cret-token" } },
        clearCredential: false,
        rotateWebhookSecret: false,
      });
      const ok = await sync(id);
      expect(ok.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);
      expect(await contentsOf(org)).toEqual({ "private.ts": "export const p = 1;\n" });

      // Stored sealed, bound to the binding; never in any response, report or audit event.
      const [row] = await cp.sql<{ ciphertext: Buffer }[]>`
        select credential_ciphertext as ciphertext from git_bindings where id = ${id}`;
      expect(row?.ciphertext.toString("latin1")).not.toContain("s3cret-token");
      const everything = JSON.stringify([
        await root.git.getGitBinding({ id }),
        await root.git.listGitSyncs({ bindingId: id, pageSize: 0, pageToken: "" }),
        await root.audit.listAuditEvents({
          organizationId: org,
          globalOnly: false,
          action: "",
          pageSize: 0,
          pageToken: "",
        }),
      ]);
      expect(everything).not.toContain("s3cret-token");
      expect(everything).not.toContain("wrong");
    } finally {
      await server.close();
      await rm(served, { recursive: true, force: true });
    }
  });
});

describe("tenancy", () => {
  test("a global repository and an organization's repository with the same paths: each organization gets its own files or the global ones", async () => {
    const globalRepo = await repository();
    const orgRepo = await repository();
    await globalRepo.commit({
      "shared/halopsa.ts": 'export const base = "global";\n',
      "shared/only-global.ts": "export const g = 1;\n",
    });
    await orgRepo.commit({ "shared/halopsa.ts": 'export const base = "org A";\n' });
    const global = await bind(globalScope, globalRepo.url);
    const orgA = await bind(orgScope(world.orgA.id), orgRepo.url);
    try {
      await sync(global.id);
      await sync(orgA.id);
      const resolve = async (organizationId: string, path: string) => {
        const { module, provenance } = await root.modules.resolveModule({ organizationId, path });
        return [module?.content, provenance];
      };
      expect(await resolve(world.orgA.id, "shared/halopsa.ts")).toEqual([
        'export const base = "org A";\n',
        Provenance.PROVENANCE_OVERRIDE,
      ]);
      expect(await resolve(world.orgB.id, "shared/halopsa.ts")).toEqual([
        'export const base = "global";\n',
        Provenance.PROVENANCE_GLOBAL,
      ]);
      expect(await resolve(world.orgA.id, "shared/only-global.ts")).toEqual([
        "export const g = 1;\n",
        Provenance.PROVENANCE_GLOBAL,
      ]);
      const viewB = await root.modules.getEffectiveView({
        organizationId: world.orgB.id,
        knownFingerprint: "",
      });

      // A push to the organization's repository changes A only.
      await orgRepo.commit({ "shared/halopsa.ts": 'export const base = "org A v2";\n' });
      await sync(orgA.id);
      expect(await resolve(world.orgA.id, "shared/halopsa.ts")).toEqual([
        'export const base = "org A v2";\n',
        Provenance.PROVENANCE_OVERRIDE,
      ]);
      const sameB = await root.modules.getEffectiveView({
        organizationId: world.orgB.id,
        knownFingerprint: viewB.fingerprint,
      });
      expect(sameB.unchanged).toBe(true);

      // A push to the global repository reaches B and C, not A's override.
      await globalRepo.commit({ "shared/halopsa.ts": 'export const base = "global v2";\n' });
      await sync(global.id);
      expect(await resolve(world.orgB.id, "shared/halopsa.ts")).toEqual([
        'export const base = "global v2";\n',
        Provenance.PROVENANCE_GLOBAL,
      ]);
      expect(await resolve(world.orgC.id, "shared/halopsa.ts")).toEqual([
        'export const base = "global v2";\n',
        Provenance.PROVENANCE_GLOBAL,
      ]);
      expect(await resolve(world.orgA.id, "shared/halopsa.ts")).toEqual([
        'export const base = "org A v2";\n',
        Provenance.PROVENANCE_OVERRIDE,
      ]);
      // Nothing of A's repository reached another scope.
      expect(await contentsOf(world.orgB.id)).toEqual({});
      expect(Object.keys(await contentsOf(null))).toEqual([
        "shared/halopsa.ts",
        "shared/only-global.ts",
      ]);

      // Org B's admin cannot see or sync A's binding or the global one: they look missing.
      const adminB = world.as(world.keys.adminB);
      await expect(adminB.git.getGitBinding({ id: orgA.id })).rejects.toMatchObject({ code: 5 });
      await expect(adminB.git.syncGitBinding({ id: global.id })).rejects.toMatchObject({
        code: 5,
      });
    } finally {
      await root.git.unbindRepository({ id: global.id });
      await root.git.unbindRepository({ id: orgA.id });
    }
  });
});

describe("discovery and audit", () => {
  test("synced workflows are discovered, deleted ones disappear, and bind, sync and unbind are audited", async () => {
    const org = await organization();
    const repo = await repository();
    await repo.commit({
      "workflows/hello.ts":
        'import { workflow } from "bifrost";\nexport const hello = workflow({ name: "git_hello" }, () => "hi");\n',
    });
    const { id } = await bind(orgScope(org), repo.url);
    await sync(id);
    await cp.discovery.drain();
    const listed = await root.workflows.listWorkflows({ scope: orgScope(org) });
    expect(listed.workflows.map((w) => w.name)).toEqual(["git_hello"]);

    await repo.commit({ "workflows/hello.ts": null, "workflows/other.ts": "export {};\n" });
    await sync(id);
    await cp.discovery.drain();
    const after = await root.workflows.listWorkflows({ scope: orgScope(org) });
    expect(after.workflows).toEqual([]);

    await root.git.unbindRepository({ id });
    const { events } = await root.audit.listAuditEvents({
      organizationId: org,
      globalOnly: false,
      action: "",
      pageSize: 0,
      pageToken: "",
    });
    const actions = events.map((e) => e.action).filter((a) => a.startsWith("git."));
    expect(actions.sort()).toEqual(["git.bind", "git.sync", "git.sync", "git.unbind"]);
  });
});
