// `npm run reseal`: after a key rotation (a new BIFROST_SECRET_ACTIVE_KEY_ID, the old key still
// listed in BIFROST_SECRET_KEYS), re-seals every secret value, git credential and webhook
// secret with the active key, so the old key can then be dropped. Safe to run again: only
// what is sealed with another key is touched, and each change is audited.
import { systemActor } from "./audit/audit-log.js";
import { ConfigError, loadConfig } from "./config.js";
import { migrate } from "./db/migrate.js";
import { connectPostgres } from "./db/postgres.js";
import { createGitBindingStore } from "./git/binding-store.js";
import { createLogger } from "./log.js";
import { createSecretStore } from "./secrets/secret-store.js";

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(2);
}
const log = createLogger({ name: "bifrost-reseal", level: config.logLevel });
const sql = await connectPostgres(config.databaseUrl);
try {
  await migrate(config.databaseUrl, { logger: log });
  const keyring = config.secretKeyring;
  const secrets = await createSecretStore(sql, keyring).reseal(systemActor);
  const gitBindings = await createGitBindingStore(sql, keyring).reseal(systemActor);
  log.info(
    { activeKeyId: keyring.activeKeyId, secrets, gitBindings },
    "everything sealed is now sealed with the active key",
  );
} catch (error) {
  log.fatal({ err: error }, "reseal failed; what was re-sealed stays re-sealed, run it again");
  process.exitCode = 1;
} finally {
  await sql.end();
}
