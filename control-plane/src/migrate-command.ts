// `npm run migrate`: applies pending schema migrations to BIFROST_DATABASE_URL and exits.
import { migrate } from "./db/migrate.js";
import { createLogger } from "./log.js";

const log = createLogger({
  name: "bifrost-migrate",
  level: process.env.BIFROST_LOG_LEVEL ?? "info",
});
const url = process.env.BIFROST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/bifrost";
try {
  const applied = await migrate(url, { logger: log });
  log.info({ applied }, applied.length ? "migrations applied" : "schema up to date");
} catch (error) {
  log.fatal({ err: error }, "migration failed");
  process.exitCode = 1;
}
