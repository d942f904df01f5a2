import { systemActor } from "../audit/audit-log.js";
import type { Sql } from "../db/postgres.js";
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
