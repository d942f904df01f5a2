import type { Fragment, SqlOrTx } from "../db/postgres.js";

/** Where an entry of an organization's effective set comes from. */
export type Provenance = "organization" | "global" | "override";

/** A scoped table: rows keyed by (organization_id, key) with NULL organization_id = global. */
export interface CascadeTable {
  /** Table name (a constant of the code, never input). */
  table: string;
  /** The natural-key column (path, key, name). */
  keyColumn: string;
  /** Columns returned besides organization_id and the key. */
  columns: readonly string[];
}

/** A row as the cascade returns it: the selected columns plus scope, key and provenance. */
export type CascadeRow = Record<string, unknown> & {
  organization_id: string | null;
  key: string;
  provenance: Provenance;
};

/**
 * The result of reading one key for an organization: the winning row (if any) and both
 * candidates, for callers that cache each scope's row separately.
 */
export interface CascadeResolution {
  winner: CascadeRow | undefined;
  own: Record<string, unknown> | undefined;
  global: Record<string, unknown> | undefined;
}

/** Options of an effective listing: keyset pagination and an optional key prefix. */
export interface EffectiveListOptions {
  prefix?: string;
  after?: string;
  limit?: number;
}

/**
 * The cascade, written once. Reading key K for organization O returns O's row if it exists,
 * else the global row; listing for O returns O's rows plus the global rows O does not
 * override, each with its provenance. Rows of other organizations are never selected: every
 * statement filters on `organization_id = O OR organization_id IS NULL`. Modules, config and
 * secrets all read through this.
 */
export interface Cascade {
  resolve(sql: SqlOrTx, organizationId: string, key: string): Promise<CascadeResolution>;
  listEffective(
    sql: SqlOrTx,
    organizationId: string,
    options?: EffectiveListOptions,
  ): Promise<CascadeRow[]>;
  /**
   * What `resolve` reads, as a column of another statement whose rows carry the organization's
   * id in `organizationIdColumn`: the winning row's columns and its `organization_id` (null:
   * the global row won) as a JSON object, or null. For a
   * hot path where the organization is only known inside that statement (a claim), so the
   * read costs no round trip of its own and shares the statement's snapshot.
   */
  winnerColumn(sql: SqlOrTx, organizationIdColumn: string, key: string, alias: string): Fragment;
  /**
   * A condition for another statement: true while `key` still resolves, for the organization,
   * to the row whose `id` column is `id`. For tables whose rows are replaced, never updated,
   * when what they declare changes (a new id is a new row), so a caller that remembers a
   * resolution can act on it in one statement and learn in that statement whether it held.
   */
  stillResolvesTo(sql: SqlOrTx, organizationId: string, key: string, id: string): Fragment;
}

/**
 * The cascade over rows already read — one organization's and the global scope's, each
 * sorted by key — for callers that keep the global rows between reads. Yields, through
 * `build`, what listEffective returns for the same rows: the organization's rows ("override"
 * when a global row has the same key, else "organization") and the global rows it does not
 * override ("global"), in key order. Which rows win never depends on the order; the output
 * is in key order when both inputs sort by JavaScript string order, which is COLLATE "C"
 * order for ASCII keys such as module paths. The inputs are not modified.
 */
export function mergeEffective<R extends { key: string }, T>(
  own: readonly R[],
  global: readonly R[],
  build: (row: R, provenance: Provenance) => T,
): T[] {
  const ownKeys = new Set<string>();
  for (const row of own) ownKeys.add(row.key);
  const overridden = new Set<string>();
  for (const row of global) if (ownKeys.has(row.key)) overridden.add(row.key);
  const merged: T[] = [];
  const pushOwn = (row: R) =>
    merged.push(build(row, overridden.has(row.key) ? "override" : "organization"));
  let next = 0;
  for (const row of global) {
    while (next < own.length && (own[next] as R).key <= row.key) pushOwn(own[next++] as R);
    if (!ownKeys.has(row.key)) merged.push(build(row, "global"));
  }
  while (next < own.length) pushOwn(own[next++] as R);
  return merged;
}

/** Builds the cascade reader for one scoped table. */
export function createCascade(definition: CascadeTable): Cascade {
  const { table, keyColumn, columns } = definition;
  // `select` of the row `key` resolves to for the organization `organizationId` (a column or
  // a value), as a scalar subquery. false sorts before true: its own row wins over the global.
  const winner = (sql: SqlOrTx, select: Fragment, organizationId: Fragment, key: string) => sql`(
    select ${select} from ${sql(table)} t
    where t.${sql(keyColumn)} = ${key}
      and (t.organization_id = ${organizationId} or t.organization_id is null)
    order by t.organization_id is null
    limit 1)`;
  return {
    async resolve(sql, organizationId, key) {
      const rows = await sql<Record<string, unknown>[]>`
        select ${sql(columns.map((c) => `t.${c}`))}, t.organization_id, t.${sql(keyColumn)} as key
        from ${sql(table)} t
        where t.${sql(keyColumn)} = ${key}
          and (t.organization_id = ${organizationId} or t.organization_id is null)`;
      const own = rows.find((r) => r.organization_id !== null);
      const global = rows.find((r) => r.organization_id === null);
      const chosen = own ?? global;
      const provenance: Provenance = own ? (global ? "override" : "organization") : "global";
      const winner = chosen ? ({ ...chosen, provenance } as CascadeRow) : undefined;
      return { winner, own, global };
    },

    async listEffective(sql, organizationId, options = {}) {
      const after = options.after ?? "";
      const prefix = options.prefix ?? "";
      const limit = options.limit ?? null;
      const rows = await sql<CascadeRow[]>`
        select ${sql(columns.map((c) => `t.${c}`))}, t.organization_id, t.${sql(keyColumn)} as key,
          case
            when t.organization_id is null then 'global'
            when exists (
              select 1 from ${sql(table)} g
              where g.organization_id is null and g.${sql(keyColumn)} = t.${sql(keyColumn)}
            ) then 'override'
            else 'organization'
          end as provenance
        from ${sql(table)} t
        where (
            t.organization_id = ${organizationId}
            or (t.organization_id is null and not exists (
              select 1 from ${sql(table)} o
              where o.organization_id = ${organizationId}
                and o.${sql(keyColumn)} = t.${sql(keyColumn)}
            ))
          )
          and t.${sql(keyColumn)} > ${after}
          and starts_with(t.${sql(keyColumn)}, ${prefix})
        order by t.${sql(keyColumn)}
        limit ${limit}`;
      return rows;
    },

    winnerColumn(sql, organizationIdColumn, key, alias) {
      const object = sql.unsafe(
        [...columns, "organization_id"].map((c) => `'${c}', t.${c}`).join(", "),
      );
      return sql`${winner(sql, sql`json_build_object(${object})`, sql`${sql(organizationIdColumn)}`, key)} as ${sql(alias)}`;
    },

    stillResolvesTo(sql, organizationId, key, id) {
      return sql`${winner(sql, sql`t.id`, sql`${organizationId}`, key)} = ${id}::bigint`;
    },
  };
}
