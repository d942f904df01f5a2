import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createGitBindingStore } from "../git/binding-store.js";
import type { ApiClients } from "../testing/grpc-clients.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";
import { parseSecretKeyring } from "./secret-cipher.js";
import { createSecretStore } from "./secret-store.js";

// Key rotation end to end: values sealed with the old key (secrets, git credentials, webhook
// secrets, in two organizations and the global scope) are moved to the new key by
// `npm run reseal`, after which a deployment holding only the new key opens all of them.

const run = promisify(execFile);
const repositoryRoot = fileURLToPath(new URL("../../..", import.meta.url));
const key = (fill: number) => Buffer.alloc(32, fill).toString("base64");
const newKeyOnly = parseSecretKeyring(`test-k2:${key(2)}`);

let cp: TestControlPlane;
let world: TenancyWorld;
let root: ApiClients;

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  root = world.as(world.keys.platformAdmin);
});

afterAll(async () => {
  await cp?.close();
});

async function reseal(): Promise<{ secrets: number; gitBindings: number }> {
  const { stdout } = await run(
    process.execPath,
    ["--conditions=development", "--import", "tsx", "control-plane/src/reseal-command.ts"],
    {
      cwd: repositoryRoot,
      env: {
        PATH: process.env.PATH,
        BIFROST_DATABASE_URL: cp.databaseUrl,
        BIFROST_SECRET_KEYS: `test-k2:${key(2)},test-k1:${key(1)}`,
        BIFROST_SECRET_ACTIVE_KEY_ID: "test-k2",
      },
    },
  );
  const summary = stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { msg: string; secrets: number; gitBindings: number })
    .find((entry) => entry.msg.startsWith("everything sealed"));
  if (!summary) throw new Error(`reseal printed no summary: ${stdout}`);
  return { secrets: summary.secrets, gitBindings: summary.gitBindings };
}

describe("key rotation", () => {
  test("npm run reseal moves secrets, git credentials and webhook secrets of every scope to the active key", async () => {
    await root.secrets.setSecret({
      scope: orgScope(world.orgA.id),
      name: "halo.token",
      value: "org-a-secret",
      description: "",
    });
    await root.secrets.setSecret({
      scope: globalScope,
      name: "halo.token",
      value: "global-secret",
      description: "",
    });
    const bind = async (scope: typeof globalScope, url: string, token?: string) =>
      (
        await root.git.bindRepository({
          scope,
          repositoryUrl: url,
          branch: "main",
          subfolder: "",
          credential: token ? { kind: { $case: "token", value: token } } : undefined,
          pollIntervalSeconds: 0,
        })
      ).binding?.id as string;
    const orgA = await bind(orgScope(world.orgA.id), "https://git.example.com/a.git", "tok-a");
    const orgB = await bind(orgScope(world.orgB.id), "https://git.example.com/b.git", "tok-b");
    const global = await bind(globalScope, "https://git.example.com/global.git");
    const webhookBefore = await cp.stores.gitBindings.webhook(orgB);

    expect(await reseal()).toEqual({ secrets: 2, gitBindings: 3 });

    const bindings = createGitBindingStore(cp.sql, newKeyOnly);
    expect(await bindings.credential(orgA)).toEqual({ kind: "token", token: "tok-a" });
    expect(await bindings.credential(orgB)).toEqual({ kind: "token", token: "tok-b" });
    expect(await bindings.credential(global)).toBeUndefined();
    expect(await bindings.webhook(orgB)).toEqual(webhookBefore);
    const secrets = createSecretStore(cp.sql, newKeyOnly);
    expect((await secrets.reveal(world.orgA.id, "halo.token"))?.value).toBe("org-a-secret");
    expect((await secrets.reveal(world.orgB.id, "halo.token"))?.value).toBe("global-secret");

    const keyIds = await cp.sql<{ key_id: string }[]>`
      select credential_key_id as key_id from git_bindings where credential_key_id is not null
      union select webhook_key_id from git_bindings
      union select key_id from secrets`;
    expect(keyIds.map((row) => row.key_id)).toEqual(["test-k2"]);
    const audited = await cp.sql<{ organization_id: string | null; target: string }[]>`
      select organization_id, target from audit_events where action = 'git.reseal' order by target`;
    expect(audited).toEqual(
      [
        { organization_id: world.orgA.id, target: orgA },
        { organization_id: world.orgB.id, target: orgB },
        { organization_id: null, target: global },
      ].sort((a, b) => a.target.localeCompare(b.target)),
    );

    // Nothing is left on the old key: running it again changes nothing.
    expect(await reseal()).toEqual({ secrets: 0, gitBindings: 0 });
  });
});
