import type { ConfigStore } from "../config-store/config-store.js";
import type { ModuleStore } from "../modules/module-store.js";

/** The config key (JSON array of host names) listing hosts every workflow of an organization may reach. */
export const organizationHostsKey = "network.hosts";

/** What a sandbox of an organization is started with besides the workflow's own declarations. */
export interface SandboxView {
  fingerprint: string;
  importMapJson: string;
  organizationHosts: string[];
}

/**
 * The organization's effective tree (fingerprint and import map) and the hosts it lets every
 * workflow reach (config "network.hosts", with the cascade). Only a JSON array of strings
 * counts; the runner validates each host and fails the execution naming any it refuses.
 */
export async function sandboxView(
  deps: { modules: ModuleStore; config: ConfigStore },
  organizationId: string,
): Promise<SandboxView> {
  // The import map's check already refuses an organization that does not exist.
  const [tree, hosts] = await Promise.all([
    deps.modules.importMap(organizationId),
    deps.config.resolve(organizationId, organizationHostsKey, { organizationChecked: true }),
  ]);
  const declared = hosts?.entry.value.type === "json" ? hosts.entry.value.value : [];
  return {
    fingerprint: tree.fingerprint,
    importMapJson: JSON.stringify(tree.importMap),
    organizationHosts: Array.isArray(declared)
      ? declared.filter((h): h is string => typeof h === "string")
      : [],
  };
}
