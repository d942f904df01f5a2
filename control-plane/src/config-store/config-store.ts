import { type Actor, recordAudit } from "../audit/audit-log.js";
import { createCascade, type Provenance } from "../cascade/cascade.js";
import { type Fragment, isForeignKeyViolation, type Sql } from "../db/postgres.js";
import { notFound } from "../errors.js";
import { assertOrganizationExists } from "../organizations/organization-store.js";
import { describeScope, type Scope, scopeOfRow, scopeOrganizationId } from "../scope.js";
import {
  type ConfigValue,
  configValueFromRow,
  validateConfigKey,
  validateDescription,
} from "./config-value.js";
import { checkPlatformSetting } from "./platform-keys.js";

/** One config entry of a scope. */
export interface ConfigRecord {
  scope: Scope;
  key: string;
  value: ConfigValue;
  description: string;
  updatedAt: Date;
}

/** Typed settings per scope, read with the cascade. */
export interface ConfigStore {
  set(
    actor: Actor,
    scope: Scope,
    key: string,
    value: ConfigValue,
    description: string,
  ): Promise<ConfigRecord>;
  get(scope: Scope, key: string): Promise<ConfigRecord>;
  /**
   * The organization's value, else the global one; undefined when neither exists. NOT_FOUND
   * for an organization that does not exist, unless the caller checks that itself in the
   * same breath (`organizationChecked`).
   */
  resolve(
    organizationId: string,
    key: string,
    options?: { organizationChecked?: boolean },
  ): Promise<{ entry: ConfigRecord; provenance: Provenance } | undefined>;
  /**
   * `resolve`'s value as a column of another statement whose rows hold the organization's id
   * in `organizationIdColumn` (no round trip of its own); read it with `effectiveValueOf`.
   */
  effectiveValueColumn(organizationIdColumn: string, key: string, alias: string): Fragment;
  delete(actor: Actor, scope: Scope, key: string): Promise<void>;
  list(scope: Scope): Promise<ConfigRecord[]>;
  listEffective(
    organizationId: string,
  ): Promise<Array<{ entry: ConfigRecord; provenance: Provenance }>>;
}

const configCascade = createCascade({
  table: "config_entries",
  keyColumn: "key",
  columns: ["value_type", "value", "description", "updated_at"],
});

interface ConfigRow {
  organization_id: string | null;
  key: string;
  value_type: string;
  value: unknown;
  description: string;
  updated_at: Date;
}

const toRecord = (row: ConfigRow): ConfigRecord => ({
  scope: scopeOfRow(row.organization_id),
  key: row.key,
  value: configValueFromRow(row.value_type, row.value),
  description: row.description,
  updatedAt: row.updated_at,
});

// Ints are stored as JSON strings: a jsonb number read back into JS would lose int64 precision.
const storedValue = (value: ConfigValue): unknown => value.value;

/** Creates the config store. */
export function createConfigStore(sql: Sql): ConfigStore {
  return {
    async set(actor, scope, rawKey, value, rawDescription) {
      const key = validateConfigKey(rawKey);
      const description = validateDescription(rawDescription);
      checkPlatformSetting(key, value);
      const organizationId = scopeOrganizationId(scope);
      try {
        return await sql.begin(async (tx) => {
          const [row] = await tx<ConfigRow[]>`
            insert into config_entries (organization_id, key, value_type, value, description)
            values (${organizationId}, ${key}, ${value.type}, ${tx.json(storedValue(value) as never)}, ${description})
            on conflict on constraint config_entries_scope_key_key do update
            set value_type = excluded.value_type, value = excluded.value,
              description = excluded.description, updated_at = now()
            returning *`;
          await recordAudit(tx, actor, {
            organizationId,
            action: "config.set",
            targetType: "config",
            target: key,
            // A secret_ref names a secret, it is not one; other values are settings, not secrets.
            details: { type: value.type },
          });
          return toRecord(row as ConfigRow);
        });
      } catch (error) {
        if (isForeignKeyViolation(error))
          throw notFound(`organization "${organizationId}" not found`);
        throw error;
      }
    },

    async get(scope, rawKey) {
      const key = validateConfigKey(rawKey);
      const organizationId = scopeOrganizationId(scope);
      const [row] = await sql<ConfigRow[]>`
        select * from config_entries where organization_id is not distinct from ${organizationId} and key = ${key}`;
      if (!row) {
        if (organizationId) await assertOrganizationExists(sql, organizationId);
        throw notFound(`config key "${key}" not found in ${describeScope(scope)}`);
      }
      return toRecord(row);
    },

    async resolve(organizationId, rawKey, options = {}) {
      const key = validateConfigKey(rawKey);
      const { winner, own } = await configCascade.resolve(sql, organizationId, key);
      // Without a row of its own, the organization might not exist: never hand the global
      // value to an id that names nothing.
      if (!own && !options.organizationChecked) await assertOrganizationExists(sql, organizationId);
      if (!winner) return undefined;
      return { entry: toRecord(winner as unknown as ConfigRow), provenance: winner.provenance };
    },

    effectiveValueColumn(organizationIdColumn, rawKey, alias) {
      return configCascade.winnerColumn(
        sql,
        organizationIdColumn,
        validateConfigKey(rawKey),
        alias,
      );
    },

    async delete(actor, scope, rawKey) {
      const key = validateConfigKey(rawKey);
      const organizationId = scopeOrganizationId(scope);
      await sql.begin(async (tx) => {
        const deleted = await tx`
          delete from config_entries where organization_id is not distinct from ${organizationId} and key = ${key}
          returning 1`;
        if (deleted.length === 0)
          throw notFound(`config key "${key}" not found in ${describeScope(scope)}`);
        await recordAudit(tx, actor, {
          organizationId,
          action: "config.delete",
          targetType: "config",
          target: key,
        });
      });
    },

    async list(scope) {
      const organizationId = scopeOrganizationId(scope);
      if (organizationId) await assertOrganizationExists(sql, organizationId);
      const rows = await sql<ConfigRow[]>`
        select * from config_entries where organization_id is not distinct from ${organizationId} order by key`;
      return rows.map(toRecord);
    },

    async listEffective(organizationId) {
      await assertOrganizationExists(sql, organizationId);
      const rows = await configCascade.listEffective(sql, organizationId);
      return rows.map((row) => ({
        entry: toRecord(row as unknown as ConfigRow),
        provenance: row.provenance,
      }));
    },
  };
}

/** The value an `effectiveValueColumn` read: undefined when neither scope has the key. */
export function effectiveValueOf(column: unknown): ConfigValue | undefined {
  if (column === null || typeof column !== "object") return undefined;
  const row = column as { value_type: string; value: unknown };
  return configValueFromRow(row.value_type, row.value);
}
