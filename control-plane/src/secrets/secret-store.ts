import { type Actor, recordAudit } from "../audit/audit-log.js";
import { createCascade, type Provenance } from "../cascade/cascade.js";
import { validateConfigKey, validateDescription } from "../config-store/config-value.js";
import { isForeignKeyViolation, type Sql } from "../db/postgres.js";
import { invalidArgument, notFound } from "../errors.js";
import { assertOrganizationExists } from "../organizations/organization-store.js";
import { describeScope, type Scope, scopeOfRow, scopeOrganizationId } from "../scope.js";
import { openSecret, type SecretKeyring, sealSecret } from "./secret-cipher.js";

/** Largest secret value accepted, in bytes. */
export const maxSecretBytes = 64 * 1024;

/** A secret's metadata. Never carries the value. */
export interface SecretRecord {
  scope: Scope;
  name: string;
  description: string;
  keyId: string;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * Secrets per scope, sealed with AES-256-GCM. The API can set, delete and list them; only
 * `reveal` returns a value, and only the execution path (with an execution token of the
 * owning organization) may call it.
 */
export interface SecretStore {
  set(
    actor: Actor,
    scope: Scope,
    name: string,
    value: string,
    description: string,
  ): Promise<SecretRecord>;
  delete(actor: Actor, scope: Scope, name: string): Promise<void>;
  list(scope: Scope): Promise<SecretRecord[]>;
  listEffective(
    organizationId: string,
  ): Promise<Array<{ secret: SecretRecord; provenance: Provenance }>>;
  /** The plaintext an organization's execution sees for this name (own, else global). */
  reveal(
    organizationId: string,
    name: string,
  ): Promise<{ value: string; provenance: Provenance } | undefined>;
  /** Re-seals every secret not sealed with the active key; returns how many were re-sealed. */
  reseal(actor: Actor): Promise<number>;
}

const secretCascade = createCascade({
  table: "secrets",
  keyColumn: "name",
  columns: ["key_id", "nonce", "ciphertext", "description", "created_at", "updated_at"],
});

interface SecretRow {
  organization_id: string | null;
  name: string;
  key_id: string;
  nonce: Buffer;
  ciphertext: Buffer;
  description: string;
  created_at: Date;
  updated_at: Date;
}

const toRecord = (row: SecretRow): SecretRecord => ({
  scope: scopeOfRow(row.organization_id),
  name: row.name,
  description: row.description,
  keyId: row.key_id,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

// The GCM associated data: a sealed value only opens for the scope and name it was set for.
const sealContext = (organizationId: string | null, name: string) =>
  `bifrost.secret.v1\u0000${organizationId ?? "global"}\u0000${name}`;

/** Creates the secret store with the deployment's keyring. */
export function createSecretStore(sql: Sql, keyring: SecretKeyring): SecretStore {
  return {
    async set(actor, scope, rawName, value, rawDescription) {
      const name = validateConfigKey(rawName, "name");
      const description = validateDescription(rawDescription);
      if (Buffer.byteLength(value, "utf8") > maxSecretBytes) {
        throw invalidArgument(`secret "${name}" value is larger than ${maxSecretBytes} bytes`);
      }
      const organizationId = scopeOrganizationId(scope);
      const sealed = sealSecret(keyring, value, sealContext(organizationId, name));
      try {
        return await sql.begin(async (tx) => {
          const [row] = await tx<SecretRow[]>`
            insert into secrets (organization_id, name, key_id, nonce, ciphertext, description)
            values (${organizationId}, ${name}, ${sealed.keyId}, ${sealed.nonce}, ${sealed.ciphertext}, ${description})
            on conflict on constraint secrets_scope_name_key do update
            set key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext,
              description = excluded.description, updated_at = now()
            returning *`;
          await recordAudit(tx, actor, {
            organizationId,
            action: "secret.set",
            targetType: "secret",
            target: name,
          });
          return toRecord(row as SecretRow);
        });
      } catch (error) {
        if (isForeignKeyViolation(error))
          throw notFound(`organization "${organizationId}" not found`);
        throw error;
      }
    },

    async delete(actor, scope, rawName) {
      const name = validateConfigKey(rawName, "name");
      const organizationId = scopeOrganizationId(scope);
      await sql.begin(async (tx) => {
        const deleted = await tx`
          delete from secrets where organization_id is not distinct from ${organizationId} and name = ${name}
          returning 1`;
        if (deleted.length === 0)
          throw notFound(`secret "${name}" not found in ${describeScope(scope)}`);
        await recordAudit(tx, actor, {
          organizationId,
          action: "secret.delete",
          targetType: "secret",
          target: name,
        });
      });
    },

    async list(scope) {
      const organizationId = scopeOrganizationId(scope);
      if (organizationId) await assertOrganizationExists(sql, organizationId);
      const rows = await sql<SecretRow[]>`
        select organization_id, name, key_id, description, created_at, updated_at from secrets
        where organization_id is not distinct from ${organizationId} order by name`;
      return rows.map(toRecord);
    },

    async listEffective(organizationId) {
      await assertOrganizationExists(sql, organizationId);
      const rows = await secretCascade.listEffective(sql, organizationId);
      return rows.map((row) => ({
        secret: toRecord({ ...(row as unknown as SecretRow), name: row.key }),
        provenance: row.provenance,
      }));
    },

    async reveal(organizationId, rawName) {
      const name = validateConfigKey(rawName, "name");
      const { winner } = await secretCascade.resolve(sql, organizationId, name);
      if (!winner) return undefined;
      const row = winner as unknown as SecretRow;
      const value = openSecret(
        keyring,
        { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext },
        sealContext(row.organization_id, name),
      );
      return { value, provenance: winner.provenance };
    },

    async reseal(actor) {
      const stale = await sql<
        SecretRow[]
      >`select * from secrets where key_id <> ${keyring.activeKeyId}`;
      for (const row of stale) {
        const context = sealContext(row.organization_id, row.name);
        const value = openSecret(
          keyring,
          { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext },
          context,
        );
        const sealed = sealSecret(keyring, value, context);
        await sql.begin(async (tx) => {
          await tx`update secrets set key_id = ${sealed.keyId}, nonce = ${sealed.nonce}, ciphertext = ${sealed.ciphertext}
            where organization_id is not distinct from ${row.organization_id} and name = ${row.name}
              and key_id = ${row.key_id}`;
          await recordAudit(tx, actor, {
            organizationId: row.organization_id,
            action: "secret.reseal",
            targetType: "secret",
            target: row.name,
            details: { fromKeyId: row.key_id, toKeyId: sealed.keyId },
          });
        });
      }
      return stale.length;
    },
  };
}
