import { GitSyncStatus } from "@bifrost/proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createTestRepository, type TestRepository } from "../testing/git-fixtures.js";
import { scopeContents, syncBinding } from "../testing/git-scope.js";
import { startGitSshServer, type TestGitSshServer } from "../testing/git-ssh-server.js";
import type { ApiClients } from "../testing/grpc-clients.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";

// Git over SSH against a real OpenSSH server on loopback: the binding's private key reaches
// git only as a 0600 file for the fetch, the server's host key is pinned per binding on first
// use, and each scope gets only its own repository's files.

let cp: TestControlPlane;
let world: TenancyWorld;
let root: ApiClients;
let server: TestGitSshServer;
const repositories: TestRepository[] = [];

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  root = world.as(world.keys.platformAdmin);
  server = await startGitSshServer();
});

afterAll(async () => {
  await server?.close();
  await cp?.close();
  for (const repository of repositories) await repository.remove();
});

async function repository(files: Record<string, string>) {
  const repo = await createTestRepository();
  repositories.push(repo);
  const commit = await repo.commit(files);
  return { repo, commit };
}

async function bindOverSsh(scope: ReturnType<typeof orgScope>, repo: TestRepository, key: string) {
  const { binding } = await root.git.bindRepository({
    scope,
    repositoryUrl: server.urlOf(repo.dir),
    branch: "main",
    subfolder: "",
    credential: { kind: { $case: "sshPrivateKey", value: key } },
    pollIntervalSeconds: 0,
  });
  return binding?.id as string;
}

const sync = (id: string) => syncBinding(root, id);

const contentsOf = (organizationId: string | null) => scopeContents(cp.sql, organizationId);

/** A line of the key's base64 body: what any leak of the key would contain. */
const keyMaterial = (key: string) => key.split("\n")[2] as string;

describe("git over SSH", () => {
  test("each scope syncs its own repository with its key; a key the server refuses fails naming authentication; no key is ever returned", async () => {
    const a = await repository({ "shared/halopsa.ts": "export const who = 'org A';\n" });
    const g = await repository({ "shared/halopsa.ts": "export const who = 'global';\n" });
    const b = await repository({ "shared/b-only.ts": "export {};\n" });
    const idA = await bindOverSsh(orgScope(world.orgA.id), a.repo, server.authorizedKey);
    const idG = await bindOverSsh(globalScope, g.repo, server.authorizedKey);
    const idB = await bindOverSsh(orgScope(world.orgB.id), b.repo, server.strangerKey);

    const syncedA = await sync(idA);
    expect(syncedA.status, syncedA.error).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);
    expect(syncedA.commitAfter).toBe(a.commit);
    const syncedG = await sync(idG);
    expect(syncedG.status, syncedG.error).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);
    const refused = await sync(idB);
    expect(refused.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
    expect(refused.error).toMatch(
      /^authentication to ssh:\/\/\S+ failed: check the binding's credential/,
    );

    expect(await contentsOf(world.orgA.id)).toEqual({
      "shared/halopsa.ts": "export const who = 'org A';\n",
    });
    expect(await contentsOf(null)).toEqual({
      "shared/halopsa.ts": "export const who = 'global';\n",
    });
    expect(await contentsOf(world.orgB.id)).toEqual({});
    // Org B, with nothing of its own, sees the global version; org A its override.
    const viewOf = async (organizationId: string) =>
      (await root.modules.getEffectiveView({ organizationId, knownFingerprint: "" })).entries;
    const hashOf = async (scope: string | null) =>
      (
        await cp.sql<{ content_hash: string }[]>`
          select content_hash from modules where organization_id is not distinct from ${scope}
          and path = 'shared/halopsa.ts'`
      )[0]?.content_hash;
    expect((await viewOf(world.orgB.id)).map((e) => e.contentHash)).toEqual([await hashOf(null)]);
    expect((await viewOf(world.orgA.id)).map((e) => e.contentHash)).toEqual([
      await hashOf(world.orgA.id),
    ]);

    const everything = JSON.stringify(
      await Promise.all([
        ...[idA, idG, idB].map((id) => root.git.getGitBinding({ id })),
        ...[idA, idG, idB].map((bindingId) =>
          root.git.listGitSyncs({ bindingId, pageSize: 0, pageToken: "" }),
        ),
        root.audit.listAuditEvents({
          organizationId: "",
          globalOnly: false,
          action: "",
          pageSize: 0,
          pageToken: "",
        }),
      ]),
    );
    expect(everything).not.toContain(keyMaterial(server.authorizedKey));
    expect(everything).not.toContain(keyMaterial(server.strangerKey));
    const [stored] = await cp.sql<{ ciphertext: Buffer }[]>`
      select credential_ciphertext as ciphertext from git_bindings where id = ${idA}`;
    expect(stored?.ciphertext.toString("latin1")).not.toContain(keyMaterial(server.authorizedKey));
  });

  test("a host key that changes after the first sync is refused, naming it, and the scope keeps what it had", async () => {
    const { organization } = await root.organizations.createOrganization({ name: "ssh pinned" });
    const org = organization?.id as string;
    const { repo, commit } = await repository({ "a.ts": "export const a = 1;\n" });
    const id = await bindOverSsh(orgScope(org), repo, server.authorizedKey);
    expect((await sync(id)).status).toBe(GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED);

    // The same server, a new host key: what a man in the middle would present.
    await server.replaceHostKey();
    await repo.commit({ "a.ts": "export const a = 2;\n" });
    const refused = await sync(id);
    expect(refused.status).toBe(GitSyncStatus.GIT_SYNC_STATUS_FAILED);
    expect(refused.error).toMatch(/SSH host key of 127\.0\.0\.1 .*changed/);
    expect(await contentsOf(org)).toEqual({ "a.ts": "export const a = 1;\n" });
    const { binding } = await root.git.getGitBinding({ id });
    expect(binding?.lastCommit).toBe(commit);
  });
});
