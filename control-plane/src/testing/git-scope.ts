import type { GitSync } from "@bifrost/proto";
import type { Sql } from "../db/postgres.js";
import type { ApiClients } from "./grpc-clients.js";

/** Runs SyncGitBinding as `api` and returns the sync's report. */
export async function syncBinding(api: ApiClients, id: string): Promise<GitSync> {
  const { sync: report } = await api.git.syncGitBinding({ id });
  if (!report) throw new Error("the sync returned no report");
  return report;
}

/** A scope's modules straight from PostgreSQL (null = global): path → content. */
export async function scopeContents(
  sql: Sql,
  organizationId: string | null,
): Promise<Record<string, string>> {
  const rows = await sql<{ path: string; content: string }[]>`
    select path, content from modules where organization_id is not distinct from ${organizationId}
    order by path`;
  return Object.fromEntries(rows.map((r) => [r.path, r.content]));
}
