import { type ConfigStore, effectiveValueOf } from "../config-store/config-store.js";
import type { ConfigValue } from "../config-store/config-value.js";
import type { Fragment, Sql } from "../db/postgres.js";
import type { ImportMap } from "../modules/import-map.js";
import type { ModuleStore, ViewSums } from "../modules/module-store.js";

/** The config key (JSON array of host names) listing hosts every workflow of an organization may reach. */
export const organizationHostsKey = "network.hosts";

/** What a sandbox of an organization is started with besides the workflow's own declarations. */
export interface SandboxView {
  fingerprint: string;
  importMapJson: string;
  organizationHosts: string[];
}

type SandboxViewDeps = { modules: ModuleStore; config: ConfigStore; sql: Sql };

/** The columns `sandboxViewColumns` adds to a claim's row. */
export type SandboxViewColumns = ViewSums & { organization_hosts: unknown };

/**
 * What `sandboxViewOf` needs, as columns of the claim's own statement (the organization's id
 * is `claimed.organization_id` there): every claim is on the path of an execution, and this
 * spares it two statements and a round trip, reading in the claim's snapshot.
 */
export function sandboxViewColumns(deps: SandboxViewDeps): Fragment {
  const organizationId = "claimed.organization_id";
  return deps.sql`${deps.modules.viewSumColumns(organizationId)},
    ${deps.config.effectiveValueColumn(organizationId, organizationHostsKey, "organization_hosts")}`;
}

/**
 * The organization's effective tree (fingerprint and import map) and the hosts it lets every
 * workflow reach (config "network.hosts", with the cascade).
 */
export async function sandboxView(
  deps: Omit<SandboxViewDeps, "sql">,
  organizationId: string,
): Promise<SandboxView> {
  // The import map's check already refuses an organization that does not exist.
  const [tree, hosts] = await Promise.all([
    deps.modules.importMap(organizationId),
    deps.config.resolve(organizationId, organizationHostsKey, { organizationChecked: true }),
  ]);
  return viewOf(tree, hosts?.entry.value);
}

/** `sandboxView`, from the columns the claim read (`sandboxViewColumns`). */
export async function sandboxViewOf(
  deps: SandboxViewDeps,
  organizationId: string,
  columns: SandboxViewColumns,
): Promise<SandboxView> {
  const tree = await deps.modules.importMapOf(organizationId, columns);
  return viewOf(tree, effectiveValueOf(columns.organization_hosts));
}

// Only a JSON array of strings counts; the runner validates each host and fails the execution
// naming any it refuses.
function viewOf(
  tree: { fingerprint: string; importMap: ImportMap },
  hosts: ConfigValue | undefined,
): SandboxView {
  const declared = hosts?.type === "json" ? hosts.value : [];
  return {
    fingerprint: tree.fingerprint,
    importMapJson: JSON.stringify(tree.importMap),
    organizationHosts: Array.isArray(declared)
      ? declared.filter((h): h is string => typeof h === "string")
      : [],
  };
}
