import { systemActor } from "../audit/audit-log.js";
import type { Sql } from "../db/postgres.js";
import { parseApiKey } from "./api-key.js";
import type { IdentityStore } from "./identity-store.js";

/** What first start did: nothing (an admin exists), or created the first admin and a key. */
export type BootstrapResult =
  | { created: false }
  | { created: true; userId: string; email: string; secret: string; fromConfig: boolean };

/**
 * On first start (no platform admin yet) creates one with an API key: the configured key if
 * given, else a generated one the caller prints once. Serialized by an advisory lock so
 * replicas starting together create exactly one admin.
 */
export async function bootstrapPlatformAdmin(
  sql: Sql,
  identity: IdentityStore,
  options: { email: string; presetKey: string | undefined },
): Promise<BootstrapResult> {
  const reserved = await sql.reserve();
  try {
    await reserved`select pg_advisory_lock(hashtext('bifrost.bootstrap'))`;
    const [existing] = await reserved`select 1 from users where platform_admin limit 1`;
    if (existing) return { created: false };
    const user = await identity.createUser(systemActor, {
      email: options.email,
      displayName: "Platform admin",
      platformAdmin: true,
    });
    const { secret } = await identity.createApiKey(
      systemActor,
      user.id,
      "bootstrap",
      undefined,
      options.presetKey,
    );
    return {
      created: true,
      userId: user.id,
      email: user.email,
      secret,
      fromConfig: options.presetKey !== undefined,
    };
  } finally {
    await reserved`select pg_advisory_unlock(hashtext('bifrost.bootstrap'))`;
    reserved.release();
  }
}

/**
 * Installs a configured runner API key (for a single-machine deployment where the control
 * plane and its runner share configuration): creates the runner identity
 * "runner@bifrost.local" if missing and adds the key unless it already exists.
 */
export async function bootstrapRunnerKey(
  sql: Sql,
  identity: IdentityStore,
  key: string,
): Promise<boolean> {
  const parsed = parseApiKey(key);
  if (!parsed)
    throw new Error('BIFROST_BOOTSTRAP_RUNNER_KEY must look like "bfk_<16 hex>_<43 base64url>"');
  const [existing] = await sql`select 1 from api_keys where lookup = ${parsed.lookup}`;
  if (existing) return false;
  const [runner] = await sql<
    { id: string }[]
  >`select id from users where lower(email) = 'runner@bifrost.local'`;
  const userId =
    runner?.id ??
    (
      await identity.createUser(systemActor, {
        email: "runner@bifrost.local",
        displayName: "Local runner",
        platformAdmin: false,
        runner: true,
      })
    ).id;
  await identity.createApiKey(systemActor, userId, "bootstrap runner", undefined, key);
  return true;
}
