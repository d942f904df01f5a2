import type { DataProviderMeta, WorkflowMeta } from "@bifrost/sdk/host";
import { createCascade, type Provenance } from "../cascade/cascade.js";
import type { Fragment, Sql, SqlOrTx } from "../db/postgres.js";
import { invalidArgument, notFound } from "../errors.js";
import { assertOrganizationExists } from "../organizations/organization-store.js";
import { type Scope, scopeOfRow, scopeOrganizationId } from "../scope.js";

/** A workflow as stored: its scope, module and the metadata its module declared. */
export interface WorkflowRecord {
  /**
   * The declaration's row: a rediscovery replaces rows, so a new id is a new declaration
   * (metadata, module). What a remembered resolution is checked against.
   */
  declarationId: string;
  scope: Scope;
  name: string;
  modulePath: string;
  exportName: string;
  metadata: WorkflowMeta;
  discoveredAt: Date;
}

/** A data provider as stored: its scope, module (and the content hash it was discovered in). */
export interface DataProviderRecord {
  scope: Scope;
  name: string;
  modulePath: string;
  exportName: string;
  /** Content hash of the declaring module when it was discovered. */
  moduleHash: string;
  metadata: DataProviderMeta;
}

/** What discovery found in one module, as of the content hash it loaded. */
export interface ModuleDiscovery {
  path: string;
  contentHash: string;
  workflows: WorkflowMeta[];
  dataProviders: DataProviderMeta[];
  /** Why the module could not be loaded or declared invalid metadata. */
  error?: string;
}

/** Checks a workflow name given by a client: 1–200 characters, no control characters. */
export function validateWorkflowName(name: string, field = "workflow"): string {
  if (!name) throw invalidArgument(`${field} is required`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (name.length > 200 || /[\u0000-\u001f\u007f]/.test(name)) {
    throw invalidArgument(
      `${field} ${JSON.stringify(name.slice(0, 80))} must be 1–200 characters without control characters`,
    );
  }
  return name;
}

/** Discovered workflows per scope, read with the cascade (by name). */
export interface WorkflowStore {
  /**
   * Replaces what each module declares, in one transaction. A module whose content changed
   * since it was loaded is left pending (it will be discovered again). A name another module
   * of the same scope already declares fails the later module, naming both.
   */
  recordDiscovery(scope: Scope, results: ModuleDiscovery[]): Promise<void>;
  list(scope: Scope): Promise<WorkflowRecord[]>;
  listEffective(
    organizationId: string,
  ): Promise<Array<{ workflow: WorkflowRecord; provenance: Provenance }>>;
  resolve(
    organizationId: string,
    name: string,
  ): Promise<{ workflow: WorkflowRecord; provenance: Provenance }>;
  /**
   * A condition for another statement: true while the organization's workflow `name` still
   * resolves to this declaration (see `declarationId`).
   */
  stillResolvesTo(organizationId: string, name: string, declarationId: string): Fragment;
  /**
   * Every active organization's effective workflows that declare a schedule: for each name
   * some scope schedules, what the organization runs under it (its own declaration, else the
   * global one), kept only when that declaration has a schedule — an organization's override
   * without one turns the global schedule off for that organization alone. `since` is when
   * the pair began (the later of the organization's creation and the declaration's
   * discovery): no fire before it is ever due. `alongside` adds columns read per
   * organization in the same statement (its time zone, say), returned as `alongside`.
   */
  scheduled<Alongside extends object = object>(
    alongside?: (organizationIdColumn: string) => Fragment,
  ): Promise<Array<ScheduledWorkflow & { alongside: Alongside }>>;
  /** The data provider an organization runs under this name (its own, else the global one). */
  resolveDataProvider(
    organizationId: string,
    name: string,
  ): Promise<{ dataProvider: DataProviderRecord; provenance: Provenance }>;
}

/** An organization's workflow with a schedule (see `WorkflowStore.scheduled`). */
export interface ScheduledWorkflow {
  organizationId: string;
  workflow: WorkflowRecord;
  since: Date;
}

const workflowCascade = createCascade({
  table: "workflows",
  keyColumn: "name",
  columns: ["id", "module_path", "export_name", "metadata", "discovered_at"],
});

const dataProviderCascade = createCascade({
  table: "data_providers",
  keyColumn: "name",
  columns: ["module_path", "export_name", "module_hash", "metadata"],
});

interface WorkflowRow {
  id: string;
  organization_id: string | null;
  name?: string;
  key?: string;
  module_path: string;
  export_name: string;
  metadata: WorkflowMeta;
  discovered_at: Date;
}

const toRecord = (row: WorkflowRow): WorkflowRecord => ({
  declarationId: String(row.id),
  scope: scopeOfRow(row.organization_id),
  name: (row.name ?? row.key) as string,
  modulePath: row.module_path,
  exportName: row.export_name,
  metadata: row.metadata,
  discoveredAt: row.discovered_at,
});

/** Creates the workflow store. */
export function createWorkflowStore(sql: Sql): WorkflowStore {
  async function replaceDeclarations(
    tx: SqlOrTx,
    table: "workflows" | "data_providers",
    organizationId: string | null,
    module: ModuleDiscovery,
    declared: Array<{ name: string; exportName: string }>,
  ): Promise<string | undefined> {
    await tx`delete from ${tx(table)} where organization_id is not distinct from ${organizationId}
      and module_path = ${module.path}`;
    for (const item of declared) {
      const inserted = await tx`
        insert into ${tx(table)} (organization_id, name, module_path, export_name, module_hash, metadata)
        values (${organizationId}, ${item.name}, ${module.path}, ${item.exportName}, ${module.contentHash},
          ${tx.json(item as never)})
        on conflict (organization_id, name) do nothing
        returning 1`;
      if (inserted.length === 0) {
        const [owner] = await tx<{ module_path: string }[]>`
          select module_path from ${tx(table)}
          where organization_id is not distinct from ${organizationId} and name = ${item.name}`;
        const kind = table === "workflows" ? "workflow" : "data provider";
        return `${kind} name "${item.name}" is already declared by module "${owner?.module_path}" in this scope`;
      }
    }
    return undefined;
  }

  return {
    async recordDiscovery(scope, results) {
      const organizationId = scopeOrganizationId(scope);
      await sql.begin(async (tx) => {
        for (const module of results) {
          const [current] = await tx<{ content_hash: string }[]>`
            select content_hash from modules
            where organization_id is not distinct from ${organizationId} and path = ${module.path}
            for update`;
          if (current?.content_hash !== module.contentHash) continue; // changed or deleted meanwhile
          await tx`savepoint declarations`;
          let error = module.error;
          if (!error) {
            error =
              (await replaceDeclarations(
                tx,
                "workflows",
                organizationId,
                module,
                module.workflows,
              )) ??
              (await replaceDeclarations(
                tx,
                "data_providers",
                organizationId,
                module,
                module.dataProviders,
              ));
          }
          if (error) {
            // A failed module declares nothing: undo any half of its declarations.
            await tx`rollback to savepoint declarations`;
            await tx`delete from workflows where organization_id is not distinct from ${organizationId} and module_path = ${module.path}`;
            await tx`delete from data_providers where organization_id is not distinct from ${organizationId} and module_path = ${module.path}`;
          }
          await tx`
            update modules set discovery_status = ${error ? "failed" : "ok"}, discovery_error = ${error ?? null},
              discovered_at = now()
            where organization_id is not distinct from ${organizationId} and path = ${module.path}`;
        }
      });
    },

    async list(scope) {
      const organizationId = scopeOrganizationId(scope);
      if (organizationId) await assertOrganizationExists(sql, organizationId);
      const rows = await sql<WorkflowRow[]>`
        select * from workflows where organization_id is not distinct from ${organizationId} order by name`;
      return rows.map(toRecord);
    },

    async listEffective(organizationId) {
      await assertOrganizationExists(sql, organizationId);
      const rows = await workflowCascade.listEffective(sql, organizationId);
      return rows.map((row) => ({
        workflow: toRecord(row as unknown as WorkflowRow),
        provenance: row.provenance,
      }));
    },

    async resolve(organizationId, rawName) {
      const name = validateWorkflowName(rawName, "name");
      const { winner } = await workflowCascade.resolve(sql, organizationId, name);
      if (!winner) {
        await assertOrganizationExists(sql, organizationId);
        throw notFound(
          `workflow "${name}" not found for organization "${organizationId}" or globally`,
        );
      }
      return {
        workflow: toRecord(winner as unknown as WorkflowRow),
        provenance: winner.provenance,
      };
    },

    async scheduled<Alongside extends object = object>(
      alongside?: (organizationIdColumn: string) => Fragment,
    ) {
      // One statement per scheduled name (few), each over all active organizations, through
      // the cascade's own winner: a read every few seconds whatever the number of orgs × names.
      const names = await sql<Array<{ name: string }>>`
        select distinct name from workflows where metadata->>'schedule' is not null order by name`;
      const found: Array<ScheduledWorkflow & { alongside: Alongside }> = [];
      for (const { name } of names) {
        const rows = await sql<
          Array<{ organization_id: string; created_at: Date; w: Omit<WorkflowRow, "name"> | null }>
        >`
          select o.id as organization_id, o.created_at,
            ${workflowCascade.winnerColumn(sql, "o.id", name, "w")}
            ${alongside ? sql`, ${alongside("o.id")}` : sql``}
          from organizations o where o.active
          order by o.id`;
        for (const row of rows) {
          if (!row.w?.metadata.schedule) continue;
          const discoveredAt = new Date(row.w.discovered_at);
          found.push({
            organizationId: row.organization_id,
            workflow: toRecord({ ...row.w, name, discovered_at: discoveredAt }),
            since: row.created_at > discoveredAt ? row.created_at : discoveredAt,
            alongside: row as unknown as Alongside,
          });
        }
      }
      return found;
    },

    stillResolvesTo(organizationId, name, declarationId) {
      return workflowCascade.stillResolvesTo(sql, organizationId, name, declarationId);
    },

    async resolveDataProvider(organizationId, rawName) {
      const name = validateWorkflowName(rawName, "data_provider");
      const { winner } = await dataProviderCascade.resolve(sql, organizationId, name);
      if (!winner) {
        await assertOrganizationExists(sql, organizationId);
        throw notFound(
          `data provider "${name}" not found for organization "${organizationId}" or globally`,
        );
      }
      const row = winner as unknown as {
        organization_id: string | null;
        key: string;
        module_path: string;
        export_name: string;
        module_hash: string;
        metadata: DataProviderMeta;
      };
      return {
        dataProvider: {
          scope: scopeOfRow(row.organization_id),
          name: row.key,
          modulePath: row.module_path,
          exportName: row.export_name,
          moduleHash: row.module_hash,
          metadata: row.metadata,
        },
        provenance: winner.provenance,
      };
    },
  };
}
