import type { Sql } from "../db/postgres.js";

export interface AuditRecord {
  id: string;
  actorUserId: string | null;
  actorApiKeyId: string | null;
  organizationId: string | null;
  action: string;
  targetType: string;
  target: string;
  details: Record<string, unknown>;
  createdAt: Date;
  /** Exact (microsecond) position for keyset pagination: [created_at as text, id]. */
  cursor: [string, string];
}

/** Which events to list: one organization's, only global/platform ones, or all. */
export type AuditFilter =
  | { kind: "all" }
  | { kind: "organization"; organizationId: string }
  | { kind: "global" };

/**
 * Lists audit events newest first with keyset pagination on (created_at, id). The cursor's
 * timestamp travels as text and is cast in SQL: a timestamptz parameter would pass through a
 * JS Date and lose its microseconds, skipping events just older than the page boundary.
 */
export async function listAuditEvents(
  sql: Sql,
  options: { filter: AuditFilter; action?: string; before?: [string, string]; limit: number },
): Promise<AuditRecord[]> {
  const { filter, action, before, limit } = options;
  const rows = await sql<
    {
      id: string;
      actor_user_id: string | null;
      actor_api_key_id: string | null;
      organization_id: string | null;
      action: string;
      target_type: string;
      target: string;
      details: Record<string, unknown>;
      created_at: Date;
      created_at_text: string;
    }[]
  >`
    select *, created_at::text as created_at_text from audit_events
    where ${
      filter.kind === "organization"
        ? sql`organization_id = ${filter.organizationId}`
        : filter.kind === "global"
          ? sql`organization_id is null`
          : sql`true`
    }
      and ${action ? sql`action = ${action}` : sql`true`}
      and ${before ? sql`(created_at, id) < (${before[0]}::text::timestamptz, ${before[1]}::uuid)` : sql`true`}
    order by created_at desc, id desc
    limit ${limit}`;
  return rows.map((row) => ({
    id: row.id,
    actorUserId: row.actor_user_id,
    actorApiKeyId: row.actor_api_key_id,
    organizationId: row.organization_id,
    action: row.action,
    targetType: row.target_type,
    target: row.target,
    details: row.details,
    createdAt: row.created_at,
    cursor: [row.created_at_text, row.id],
  }));
}
