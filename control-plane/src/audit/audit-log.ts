import type { SqlOrTx } from "../db/postgres.js";

/** Who performed a mutation: the user and API key of the request (null for the platform itself). */
export interface Actor {
  userId: string | null;
  apiKeyId: string | null;
}

/** The platform acting on its own behalf (bootstrap, migrations). */
export const systemActor: Actor = { userId: null, apiKeyId: null };

/** One audited mutation. Details must never include secret values. */
export interface AuditEntry {
  organizationId: string | null;
  action: string;
  targetType: string;
  target: string;
  details?: Record<string, unknown>;
}

/**
 * Records a mutation. Call it inside the mutation's transaction so the event exists exactly
 * when the change does.
 */
export async function recordAudit(sql: SqlOrTx, actor: Actor, entry: AuditEntry): Promise<void> {
  await sql`
    insert into audit_events (actor_user_id, actor_api_key_id, organization_id, action, target_type, target, details)
    values (${actor.userId}, ${actor.apiKeyId}, ${entry.organizationId}, ${entry.action},
      ${entry.targetType}, ${entry.target}, ${sql.json((entry.details ?? {}) as never)})`;
}
