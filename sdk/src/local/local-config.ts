import { readFile } from "node:fs/promises";
import type { JsonValue } from "../meta.js";

/**
 * The local runner's stand-in for the platform's data: the organization a run pretends to be
 * for, its config and secrets (already resolved: there is no cascade locally) and initial
 * variables. Read from a JSON file given with --config:
 *
 * ```json
 * {
 *   "organization": { "id": "contoso", "name": "Contoso" },
 *   "config": { "halo.url": "https://contoso.halopsa.com" },
 *   "secrets": { "halo.client_secret": "…" },
 *   "variables": {}
 * }
 * ```
 */
export interface LocalConfig {
  organization: { id: string; name: string };
  config: Record<string, JsonValue>;
  secrets: Record<string, string>;
  variables: Record<string, JsonValue>;
}

/** The config used without --config. */
export function emptyLocalConfig(): LocalConfig {
  return { organization: { id: "local", name: "Local" }, config: {}, secrets: {}, variables: {} };
}

/** Reads and checks a local config file; throws one message listing every problem. */
export async function loadLocalConfig(path: string): Promise<LocalConfig> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new Error(`cannot read the config file ${path}: ${(error as Error).message}`);
  }
  return parseLocalConfig(parsed, path);
}

/** Checks the shape of a parsed local config; `source` names it in messages. */
export function parseLocalConfig(value: unknown, source: string): LocalConfig {
  const problems: string[] = [];
  const config = emptyLocalConfig();
  if (!isObject(value))
    throw new Error(
      `${source} must hold a JSON object with organization, config, secrets and variables`,
    );
  const allowed = ["organization", "config", "secrets", "variables"];
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key))
      problems.push(`unknown key ${JSON.stringify(key)} (allowed: ${allowed.join(", ")})`);
  }
  if (value.organization !== undefined) {
    const org = value.organization;
    if (isObject(org) && typeof org.id === "string" && typeof org.name === "string") {
      config.organization = { id: org.id, name: org.name };
    } else {
      problems.push('organization must be { "id": string, "name": string }');
    }
  }
  for (const key of ["config", "variables"] as const) {
    const section = value[key];
    if (section === undefined) continue;
    if (isObject(section)) config[key] = section as Record<string, JsonValue>;
    else problems.push(`${key} must be an object of names to JSON values`);
  }
  if (value.secrets !== undefined) {
    const secrets = value.secrets;
    if (isObject(secrets) && Object.values(secrets).every((secret) => typeof secret === "string")) {
      config.secrets = secrets as Record<string, string>;
    } else {
      problems.push("secrets must be an object of names to strings");
    }
  }
  if (problems.length) throw new Error(`${source}: ${problems.join("; ")}`);
  return config;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
