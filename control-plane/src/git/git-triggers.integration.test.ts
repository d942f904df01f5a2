import { createHmac, randomUUID } from "node:crypto";
import { GitSyncStatus, GitSyncTrigger } from "@bifrost/proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createTestRepository, type TestRepository } from "../testing/git-fixtures.js";
import type { ApiClients } from "../testing/grpc-clients.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { orgScope } from "../testing/wire.js";
import { type GitPoller, startGitPoller } from "./git-poller.js";
import { startWebhookServer, type WebhookServer } from "./webhook-server.js";

let cp: TestControlPlane;
let world: TenancyWorld;
let root: ApiClients;
let webhooks: WebhookServer;
const repositories: TestRepository[] = [];

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  root = world.as(world.keys.platformAdmin);
  const { createLogger } = await import("../log.js");
  webhooks = await startWebhookServer({
    listen: "127.0.0.1:0",
    bindings: cp.stores.gitBindings,
    syncer: cp.gitSyncer,
    log: createLogger({ name: "webhook-test", level: "silent" }),
  });
});

afterAll(async () => {
  await webhooks?.close();
  await cp?.close();
  for (const repository of repositories) await repository.remove();
});

async function boundRepository(organizationId: string, pollIntervalSeconds = 0) {
  const repo = await createTestRepository();
  repositories.push(repo);
  await repo.commit({ "a.ts": "export const a = 1;\n" });
  const { binding, webhookSecret } = await root.git.bindRepository({
    scope: orgScope(organizationId),
    repositoryUrl: repo.url,
    branch: "main",
    subfolder: "",
    credential: undefined,
    pollIntervalSeconds,
  });
  return { repo, id: binding?.id as string, secret: webhookSecret, path: binding?.webhookPath };
}

async function syncsOf(id: string) {
  return (await root.git.listGitSyncs({ bindingId: id, pageSize: 0, pageToken: "" })).syncs;
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function post(path: string, body: string, headers: Record<string, string>) {
  return fetch(`http://${webhooks.address}${path}`, { method: "POST", body, headers });
}

const sign = (secret: string, body: string) =>
  `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

describe("the push webhook", () => {
  test("a signed push to the bound branch syncs; bad signatures and unknown bindings are refused", async () => {
    const { repo, id, secret, path } = await boundRepository(world.orgA.id);
    expect(path).toBe(`/hooks/git/${id}`);
    const head = await repo.commit({ "b.ts": "export const b = 1;\n" });
    const body = JSON.stringify({ ref: "refs/heads/main", after: head });

    const unsigned = await post(path as string, body, { "x-github-event": "push" });
    expect(unsigned.status).toBe(401);
    const forged = await post(path as string, body, {
      "x-github-event": "push",
      "x-hub-signature-256": sign("not the secret", body),
    });
    expect(forged.status).toBe(401);
    // Another binding's secret does not sign for this one.
    const other = await boundRepository(world.orgB.id);
    const crossed = await post(path as string, body, {
      "x-github-event": "push",
      "x-hub-signature-256": sign(other.secret, body),
    });
    expect(crossed.status).toBe(401);
    const unknown = await post(`/hooks/git/${randomUUID()}`, body, {
      "x-github-event": "push",
      "x-hub-signature-256": sign(secret, body),
    });
    expect(unknown.status).toBe(404);
    expect(await syncsOf(id)).toEqual([]);

    const otherBranch = JSON.stringify({ ref: "refs/heads/feature" });
    const ignored = await post(path as string, otherBranch, {
      "x-github-event": "push",
      "x-hub-signature-256": sign(secret, otherBranch),
    });
    expect(ignored.status).toBe(202);
    expect(await ignored.json()).toEqual({
      ignored: "push to refs/heads/feature, bound branch is main",
    });
    const ping = await post(path as string, "{}", {
      "x-github-event": "ping",
      "x-hub-signature-256": sign(secret, "{}"),
    });
    expect(ping.status).toBe(200);
    expect(await syncsOf(id)).toEqual([]);

    const accepted = await post(path as string, body, {
      "x-github-event": "push",
      "x-hub-signature-256": sign(secret, body),
    });
    expect(accepted.status).toBe(202);
    const syncs = await until(
      () => syncsOf(id),
      (s) => s[0]?.status === GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED,
    );
    expect(syncs.length).toBe(1);
    expect(syncs[0]?.trigger).toBe(GitSyncTrigger.GIT_SYNC_TRIGGER_WEBHOOK);
    expect(syncs[0]?.commitAfter).toBe(head);
    // Nothing reached the other organization's scope.
    expect(await syncsOf(other.id)).toEqual([]);
  });

  test("a rotated secret replaces the old one", async () => {
    const { id, secret, path } = await boundRepository(world.orgC.id);
    const { webhookSecret } = await root.git.updateGitBinding({
      id,
      credential: undefined,
      clearCredential: false,
      rotateWebhookSecret: true,
    });
    expect(webhookSecret).not.toBe(secret);
    const body = JSON.stringify({ ref: "refs/heads/main" });
    const old = await post(path as string, body, {
      "x-github-event": "push",
      "x-hub-signature-256": sign(secret, body),
    });
    expect(old.status).toBe(401);
    const fresh = await post(path as string, body, {
      "x-github-event": "push",
      "x-hub-signature-256": sign(webhookSecret, body),
    });
    expect(fresh.status).toBe(202);
  });
});

describe("the poll schedule", () => {
  let poller: GitPoller | undefined;
  afterAll(async () => {
    await poller?.stop();
  });

  test("a binding is synced every poll interval, and polls that find nothing new record nothing", async () => {
    const { organization } = await root.organizations.createOrganization({ name: "polled" });
    const org = organization?.id as string;
    const { repo, id } = await boundRepository(org, 1);
    const { createLogger } = await import("../log.js");
    poller = startGitPoller({
      bindings: cp.stores.gitBindings,
      syncer: cp.gitSyncer,
      log: createLogger({ name: "poll-test", level: "silent" }),
      intervalMs: 100,
    });
    const first = await until(
      () => syncsOf(id),
      (s) => s.length >= 1 && !!s[0]?.finishedAt,
    );
    expect(first[0]?.trigger).toBe(GitSyncTrigger.GIT_SYNC_TRIGGER_SCHEDULE);
    expect(first[0]?.added).toEqual(["a.ts"]);

    // Several intervals with no new commit: still one run.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect((await syncsOf(id)).length).toBe(1);

    const head = await repo.commit({ "a.ts": "export const a = 2;\n" });
    const second = await until(
      () => syncsOf(id),
      (s) => s.length >= 2 && !!s[0]?.finishedAt,
    );
    expect(second[0]?.commitAfter).toBe(head);
    expect(second[0]?.updated).toEqual(["a.ts"]);
    const rows = await cp.sql<{ content: string }[]>`
      select content from modules where organization_id = ${org} and path = 'a.ts'`;
    expect(rows[0]?.content).toBe("export const a = 2;\n");
  });
});
