import { type Actor, recordAudit } from "../audit/audit-log.js";
import { isUniqueViolation, type Sql, type SqlOrTx } from "../db/postgres.js";
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "../errors.js";

/** A tenant. */
export interface OrganizationRecord {
  id: string;
  name: string;
  active: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** What an organization owned, by kind, as reported on deletion. */
export type OwnedCounts = Record<"modules" | "configEntries" | "secrets" | "memberships", number>;

/** Organizations: create, read, list, rename / (de)activate, delete. */
export interface OrganizationStore {
  create(actor: Actor, name: string): Promise<OrganizationRecord>;
  get(id: string): Promise<OrganizationRecord>;
  /** Keyset page ordered by name; `onlyIds` restricts to those organizations. */
  list(options: {
    after?: [string, string];
    limit: number;
    onlyIds?: string[];
  }): Promise<OrganizationRecord[]>;
  update(
    actor: Actor,
    id: string,
    changes: { name?: string; active?: boolean },
  ): Promise<OrganizationRecord>;
  /**
   * Without force, refuses while the organization owns modules, config or secrets (naming
   * the counts). With force, deletes it and everything it owns in one transaction.
   * Memberships are removed either way. Audit events are kept.
   */
  delete(actor: Actor, id: string, force: boolean): Promise<OwnedCounts>;
}

interface OrganizationRow {
  id: string;
  name: string;
  active: boolean;
  created_at: Date;
  updated_at: Date;
}

const toRecord = (row: OrganizationRow): OrganizationRecord => ({
  id: row.id,
  name: row.name,
  active: row.active,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** Throws NOT_FOUND unless the organization exists. */
export async function assertOrganizationExists(sql: SqlOrTx, id: string): Promise<void> {
  const [row] = await sql`select 1 from organizations where id = ${id}`;
  if (!row) throw notFound(`organization "${id}" not found`);
}

/** Trims and checks an organization name: 1–200 characters, no control characters. */
export function validateOrganizationName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0) throw invalidArgument("name is required and must not be blank");
  if (trimmed.length > 200) {
    throw invalidArgument(
      `name "${trimmed.slice(0, 40)}…" is ${trimmed.length} characters; at most 200 are allowed`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw invalidArgument(`name ${JSON.stringify(trimmed)} must not contain control characters`);
  }
  return trimmed;
}

/**
 * Creates the organization store. `changingPrincipals` runs each change that decides what
 * members' keys may do (deactivation, deletion): the identity store's `forgettingKeys`, so
 * this replica never acts on a remembered key check it outdated.
 */
export function createOrganizationStore(
  sql: Sql,
  options: { changingPrincipals?: <T>(change: () => Promise<T>) => Promise<T> } = {},
): OrganizationStore {
  const changingPrincipals =
    options.changingPrincipals ?? (<T>(change: () => Promise<T>) => change());
  async function ownedCounts(tx: SqlOrTx, id: string): Promise<OwnedCounts> {
    const [row] = await tx<
      { modules: string; config: string; secrets: string; memberships: string }[]
    >`
      select
        (select count(*) from modules where organization_id = ${id}) as modules,
        (select count(*) from config_entries where organization_id = ${id}) as config,
        (select count(*) from secrets where organization_id = ${id}) as secrets,
        (select count(*) from memberships where organization_id = ${id}) as memberships`;
    return {
      modules: Number(row?.modules),
      configEntries: Number(row?.config),
      secrets: Number(row?.secrets),
      memberships: Number(row?.memberships),
    };
  }

  return {
    async create(actor, rawName) {
      const name = validateOrganizationName(rawName);
      try {
        return await sql.begin(async (tx) => {
          const [row] = await tx<OrganizationRow[]>`
            insert into organizations (name) values (${name}) returning *`;
          const org = toRecord(row as OrganizationRow);
          await tx`insert into module_scope_states (organization_id) values (${org.id})`;
          await recordAudit(tx, actor, {
            organizationId: org.id,
            action: "organization.create",
            targetType: "organization",
            target: org.id,
            details: { name },
          });
          return org;
        });
      } catch (error) {
        if (isUniqueViolation(error))
          throw alreadyExists(`organization named "${name}" already exists`);
        throw error;
      }
    },

    async get(id) {
      const [row] = await sql<OrganizationRow[]>`select * from organizations where id = ${id}`;
      if (!row) throw notFound(`organization "${id}" not found`);
      return toRecord(row);
    },

    async list({ after, limit, onlyIds }) {
      const rows = await sql<OrganizationRow[]>`
        select * from organizations
        where ${after ? sql`(lower(name), id) > (${after[0]}, ${after[1]}::uuid)` : sql`true`}
          and ${onlyIds ? sql`id = any(${onlyIds}::uuid[])` : sql`true`}
        order by lower(name), id
        limit ${limit}`;
      return rows.map(toRecord);
    },

    async update(actor, id, changes) {
      const name = changes.name === undefined ? undefined : validateOrganizationName(changes.name);
      const change =
        changes.active === undefined
          ? (f: () => Promise<OrganizationRecord>) => f()
          : changingPrincipals;
      try {
        return await change(() =>
          sql.begin(async (tx) => {
            const [row] = await tx<OrganizationRow[]>`
            update organizations
            set name = coalesce(${name ?? null}, name),
              active = coalesce(${changes.active ?? null}::boolean, active),
              updated_at = now()
            where id = ${id} returning *`;
            if (!row) throw notFound(`organization "${id}" not found`);
            await recordAudit(tx, actor, {
              organizationId: id,
              action: "organization.update",
              targetType: "organization",
              target: id,
              details: {
                ...(name !== undefined && { name }),
                ...(changes.active !== undefined && { active: changes.active }),
              },
            });
            return toRecord(row);
          }),
        );
      } catch (error) {
        if (isUniqueViolation(error))
          throw alreadyExists(`organization named "${name}" already exists`);
        throw error;
      }
    },

    async delete(actor, id, force) {
      return changingPrincipals(() =>
        sql.begin(async (tx) => {
          const [org] = await tx<
            OrganizationRow[]
          >`select * from organizations where id = ${id} for update`;
          if (!org) throw notFound(`organization "${id}" not found`);
          const owned = await ownedCounts(tx, id);
          const blocking = owned.modules + owned.configEntries + owned.secrets;
          if (blocking > 0 && !force) {
            throw failedPrecondition(
              `organization "${id}" still owns ${owned.modules} modules, ${owned.configEntries} config entries and ${owned.secrets} secrets; delete them first or set force to delete everything`,
            );
          }
          // Foreign keys cascade to modules, config, secrets, memberships and view state.
          await tx`delete from organizations where id = ${id}`;
          await recordAudit(tx, actor, {
            organizationId: id,
            action: "organization.delete",
            targetType: "organization",
            target: id,
            details: { name: org.name, force, removed: owned },
          });
          return owned;
        }),
      );
    },
  };
}
