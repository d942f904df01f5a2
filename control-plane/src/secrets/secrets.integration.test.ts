import { Provenance } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { systemActor } from "../audit/audit-log.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";
import { parseSecretKeyring } from "./secret-cipher.js";
import { createSecretStore } from "./secret-store.js";

let cp: TestControlPlane;
let world: TenancyWorld;

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  await world.as(world.keys.platformAdmin).secrets.setSecret({
    scope: globalScope,
    name: "halo.token",
    value: "global-token-123",
    description: "shared",
  });
  await world.as(world.keys.adminA).secrets.setSecret({
    scope: orgScope(world.orgA.id),
    name: "halo.token",
    value: "org-a-token-456",
    description: "",
  });
  await world.as(world.keys.adminB).secrets.setSecret({
    scope: orgScope(world.orgB.id),
    name: "b.password",
    value: "org-b-password-789",
    description: "",
  });
});

afterAll(async () => {
  await cp?.close();
});

describe("secrets", () => {
  test("values are encrypted at rest: no stored byte sequence contains the plaintext", async () => {
    const rows = await cp.sql<
      { ciphertext: Buffer; nonce: Buffer; key_id: string }[]
    >`select ciphertext, nonce, key_id from secrets`;
    expect(rows.length).toBe(3);
    for (const row of rows) {
      for (const plain of ["global-token-123", "org-a-token-456", "org-b-password-789"]) {
        expect(row.ciphertext.includes(Buffer.from(plain))).toBe(false);
      }
      expect(row.nonce.length).toBe(12);
      expect(row.key_id).toBe("test-k1");
    }
  });

  test("the API is write-only: listings return names and metadata, never values", async () => {
    const { secrets } = await world
      .as(world.keys.adminA)
      .secrets.listSecrets({ scope: orgScope(world.orgA.id) });
    expect(secrets?.map((s) => s.name)).toEqual(["halo.token"]);
    expect(JSON.stringify(secrets)).not.toContain("org-a-token-456");
    const effective = await world
      .as(world.keys.adminA)
      .secrets.listEffectiveSecrets({ organizationId: world.orgA.id });
    expect(effective.secrets?.map((s) => [s.secret?.name, s.provenance])).toEqual([
      ["halo.token", Provenance.PROVENANCE_OVERRIDE],
    ]);
    expect(JSON.stringify(effective)).not.toMatch(/token-\d+/);
  });

  test("the execution path reveals the organization's own value, else the global one, never another organization's", async () => {
    const store = cp.stores.secrets;
    expect(await store.reveal(world.orgA.id, "halo.token")).toEqual({
      value: "org-a-token-456",
      provenance: "override",
    });
    expect(await store.reveal(world.orgB.id, "halo.token")).toEqual({
      value: "global-token-123",
      provenance: "global",
    });
    expect(await store.reveal(world.orgC.id, "halo.token")).toEqual({
      value: "global-token-123",
      provenance: "global",
    });
    expect(await store.reveal(world.orgA.id, "b.password")).toBeUndefined();
    expect(await store.reveal(world.orgB.id, "b.password")).toEqual({
      value: "org-b-password-789",
      provenance: "organization",
    });
  });

  test("a sealed value copied into another organization's row does not open", async () => {
    await world.as(world.keys.adminA).secrets.setSecret({
      scope: orgScope(world.orgA.id),
      name: "b.password",
      value: "placeholder",
      description: "",
    });
    await cp.sql`
      update secrets set ciphertext = b.ciphertext, nonce = b.nonce, key_id = b.key_id
      from (select ciphertext, nonce, key_id from secrets where organization_id = ${world.orgB.id} and name = 'b.password') b
      where secrets.organization_id = ${world.orgA.id} and secrets.name = 'b.password'`;
    await expect(cp.stores.secrets.reveal(world.orgA.id, "b.password")).rejects.toThrow();
    await world
      .as(world.keys.adminA)
      .secrets.deleteSecret({ scope: orgScope(world.orgA.id), name: "b.password" });
  });

  test("key rotation: old values still open after a new active key, and reseal moves them to it", async () => {
    const rotated = parseSecretKeyring(
      `test-k2:${Buffer.alloc(32, 2).toString("base64")},test-k1:${Buffer.alloc(32, 1).toString("base64")}`,
      "test-k2",
    );
    const store = createSecretStore(cp.sql, rotated);
    expect((await store.reveal(world.orgA.id, "halo.token"))?.value).toBe("org-a-token-456");
    expect(await store.reseal(systemActor)).toBe(3);
    const keyIds = await cp.sql<{ key_id: string }[]>`select distinct key_id from secrets`;
    expect(keyIds.map((r) => r.key_id)).toEqual(["test-k2"]);
    expect((await store.reveal(world.orgB.id, "b.password"))?.value).toBe("org-b-password-789");
    // A deployment that no longer has the new key cannot open them: the key id really moved.
    const onlyOldKey = parseSecretKeyring(`test-k1:${Buffer.alloc(32, 1).toString("base64")}`);
    await expect(
      createSecretStore(cp.sql, onlyOldKey).reveal(world.orgA.id, "halo.token"),
    ).rejects.toThrow(/test-k2/);
  });

  test("secret values never appear in the audit trail", async () => {
    const { events } = await world.as(world.keys.platformAdmin).audit.listAuditEvents({
      organizationId: "",
      globalOnly: false,
      action: "",
      pageSize: 500,
      pageToken: "",
    });
    expect(events?.some((e) => e.action === "secret.set")).toBe(true);
    expect(JSON.stringify(events)).not.toMatch(/token-\d+|password-\d+/);
  });

  test("an org admin cannot set, list or delete another organization's or the global secrets", async () => {
    const a = world.as(world.keys.adminA);
    const attempts: Array<() => Promise<unknown>> = [
      () =>
        a.secrets.setSecret({
          scope: orgScope(world.orgB.id),
          name: "x",
          value: "y",
          description: "",
        }),
      () => a.secrets.listSecrets({ scope: orgScope(world.orgB.id) }),
      () => a.secrets.deleteSecret({ scope: orgScope(world.orgB.id), name: "b.password" }),
      () =>
        a.secrets.setSecret({
          scope: globalScope,
          name: "halo.token",
          value: "evil",
          description: "",
        }),
      () => a.secrets.listEffectiveSecrets({ organizationId: world.orgB.id }),
    ];
    for (const attempt of attempts) {
      expect(((await attempt().catch((e) => e)) as { code: status }).code).toBe(
        status.PERMISSION_DENIED,
      );
    }
    expect((await cp.stores.secrets.reveal(world.orgC.id, "halo.token"))?.value).toBe(
      "global-token-123",
    );
  });
});
