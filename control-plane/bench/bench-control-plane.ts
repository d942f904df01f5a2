import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import postgres from "postgres";
import { createStores, type Stores, startControlPlaneServer } from "../src/app.js";
import { migrate } from "../src/db/migrate.js";
import { connectPostgres, type Sql } from "../src/db/postgres.js";
import { createExecutionWaiter } from "../src/executions/execution-waiter.js";
import type { GrpcServer } from "../src/grpc/server.js";
import { bootstrapPlatformAdmin } from "../src/identity/bootstrap.js";
import { createLogger, type Logger } from "../src/log.js";
import { connectRedis } from "../src/redis.js";
import { parseSecretKeyring } from "../src/secrets/secret-cipher.js";
import { type ApiClients, connectClients } from "../src/testing/grpc-clients.js";

/** A control plane wired as main.ts wires it, over a database and key prefix of its own. */
export interface BenchControlPlane {
  sql: Sql;
  redis: Redis;
  stores: Stores;
  /** Every Redis key this instance writes starts with it. */
  redisPrefix: string;
  /** The bootstrapped platform admin's API key. */
  adminKey: string;
  /** Clients authenticated with adminKey. */
  admin: ApiClients;
  /** Clients sending no credentials (refused before any I/O: a bare gRPC round trip). */
  anonymous: ApiClients;
  /** Deletes this instance's Redis keys (SCAN + DEL of the prefix); returns how many. */
  flushCache(): Promise<number>;
  /** Stops the server, deletes the Redis keys and drops the database. */
  close(): Promise<void>;
}

/**
 * Starts a control plane for a benchmark: creates and migrates `bifrost_bench_<random>` on the
 * server of `postgresUrl`, uses a unique Redis key prefix, bootstraps a platform admin and
 * serves gRPC on 127.0.0.1:0. Postgres and Redis clients are built the way main.ts builds
 * them (same pool size and options), so the figures describe the real wiring.
 */
export async function startBenchControlPlane(options: {
  postgresUrl: string;
  redisUrl: string;
}): Promise<BenchControlPlane> {
  const name = `bifrost_bench_${randomBytes(6).toString("hex")}`;
  const url = new URL(options.postgresUrl);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  const log = createLogger({ name: "bench", level: "warn" });
  const dropDatabase = async () => {
    const maintenance = new URL(options.postgresUrl);
    maintenance.pathname = "/postgres";
    const admin = postgres(maintenance.toString(), { max: 1, onnotice: () => {} });
    try {
      await admin`drop database if exists ${admin(name)} with (force)`;
    } finally {
      await admin.end();
    }
  };
  const redisPrefix = `bifrost-bench:${name}:`;
  let sql: Sql | undefined;
  let redis: Redis | undefined;
  let started: { stores: Stores; adminKey: string; server: GrpcServer };
  try {
    await migrate(databaseUrl);
    sql = await connectPostgres(databaseUrl);
    redis = await connectRedis(options.redisUrl);
    started = await startServer(sql, redis, redisPrefix, log);
  } catch (error) {
    await sql?.end({ timeout: 5 });
    redis?.disconnect();
    await dropDatabase().catch(() => {});
    throw error;
  }
  const [db, cache] = [sql, redis];
  const { stores, adminKey, server } = started;
  const pool = connectClients(`127.0.0.1:${server.port}`);

  async function flushCache(): Promise<number> {
    let deleted = 0;
    let cursor = "0";
    do {
      const [next, keys] = await cache.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) deleted += await cache.del(...keys);
    } while (cursor !== "0");
    return deleted;
  }

  return {
    sql: db,
    redis: cache,
    stores,
    redisPrefix,
    adminKey,
    admin: pool.as(adminKey),
    anonymous: pool.as(undefined),
    flushCache,
    async close() {
      try {
        pool.close();
        await server.shutdown(1000);
        await db.end({ timeout: 5 });
        await flushCache();
        cache.disconnect();
      } finally {
        await dropDatabase();
      }
    },
  };
}

async function startServer(
  sql: Sql,
  redis: Redis,
  redisPrefix: string,
  log: Logger,
): Promise<{ stores: Stores; adminKey: string; server: GrpcServer }> {
  const stores = createStores({
    sql,
    redis,
    log,
    settings: {
      redisKeyPrefix: redisPrefix,
      moduleCacheTtlSeconds: 24 * 3600,
      moduleMaxBytes: 1024 * 1024,
      secretKeyring: parseSecretKeyring(`bench:${randomBytes(32).toString("base64")}`, "bench"),
      grpcListen: "127.0.0.1:0",
    },
  });
  const bootstrap = await bootstrapPlatformAdmin(sql, stores.identity, {
    email: "admin@bench.local",
    presetKey: undefined,
  });
  if (!bootstrap.created) throw new Error("the fresh bench database already had a platform admin");
  const server = await startControlPlaneServer({
    sql,
    stores,
    log,
    listen: "127.0.0.1:0",
    // The module benchmark starts no executions, so it needs no NATS.
    queue: {
      publish: async () => {
        throw new Error("the module benchmark dispatches no executions");
      },
    },
    waiter: await createExecutionWaiter(sql),
  });
  return { stores, adminKey: bootstrap.secret, server };
}
