import postgres from "postgres";

/** The postgres.js client type used across the control plane (also a transaction handle). */
export type Sql = postgres.Sql;
/** A client or an open transaction: store functions accept either. */
export type SqlOrTx = postgres.Sql | postgres.TransactionSql;
/** Part of a statement, interpolated into another (`sql\`… ${fragment} …\``). */
export type Fragment = postgres.PendingQuery<postgres.Row[]>;

/** The URL with any password masked, for error messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable url)";
  }
}

/**
 * Connects to PostgreSQL, creating the database first if it does not exist, and checks the
 * connection with a round trip so an unreachable server fails at start with the URL named.
 */
export async function connectPostgres(
  url: string,
  options: {
    max?: number;
    /** Called for each statement sent (the benchmark counts statements per execution). */
    onStatement?: () => void;
  } = {},
): Promise<Sql> {
  await ensureDatabase(url);
  const { onStatement } = options;
  const sql = postgres(url, {
    max: options.max ?? 10,
    ...(onStatement && { debug: () => onStatement() }),
    onnotice: () => {},
    transform: { undefined: null },
    connection: { application_name: "bifrost-control-plane" },
  });
  try {
    await sql`select 1`;
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw new Error(`cannot reach PostgreSQL at ${redactUrl(url)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return sql;
}

/** Creates the URL's database through the server's maintenance database when it is missing. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ""));
  if (!name) throw new Error(`database URL ${redactUrl(url)} names no database`);
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const rows = await sql`select 1 from pg_database where datname = ${name}`;
    if (rows.length === 0) {
      try {
        await sql`create database ${sql(name)}`;
      } catch (error) {
        // Another process created it between the check and the create: that is fine.
        if ((error as { code?: string }).code !== "42P04") throw error;
      }
    }
  } catch (error) {
    throw new Error(`cannot reach PostgreSQL at ${redactUrl(url)}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** True when the error is a unique-constraint violation (SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === "23505";
}

/** True when the error is a foreign-key violation (SQLSTATE 23503). */
export function isForeignKeyViolation(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === "23503";
}
