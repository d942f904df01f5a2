import { fileURLToPath } from "node:url";
import { runner } from "node-pg-migrate";
import type { Logger } from "../log.js";
import { ensureDatabase } from "./postgres.js";

/** Where the versioned SQL migrations live (control-plane/migrations, one file per version). */
export const migrationsDir = fileURLToPath(new URL("../../migrations", import.meta.url));

/** The table node-pg-migrate records applied versions in. */
export const migrationsTable = "schema_migrations";

/**
 * Applies pending migrations in order, each in its own transaction, under node-pg-migrate's
 * advisory lock so concurrent starts do not race. `count` stops after that many versions
 * (used to build a database at an earlier version in tests).
 */
export async function migrate(
  databaseUrl: string,
  options: { logger?: Logger; count?: number } = {},
): Promise<string[]> {
  await ensureDatabase(databaseUrl);
  const log = options.logger;
  const applied = await runner({
    databaseUrl,
    dir: migrationsDir,
    migrationsTable,
    direction: "up",
    count: options.count ?? Number.POSITIVE_INFINITY,
    singleTransaction: false,
    checkOrder: true,
    verbose: false,
    logger: {
      debug: () => {},
      info: (msg: string) => log?.debug({ detail: msg }, "migration"),
      warn: (msg: string) => log?.warn({ detail: msg }, "migration warning"),
      error: (msg: string) => log?.error({ detail: msg }, "migration error"),
    },
  });
  return applied.map((m) => m.name);
}
