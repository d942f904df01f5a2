import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type JobDispatchNames, jobDispatchNames } from "@bifrost/proto";
import { jetstreamManager } from "@nats-io/jetstream";
import type { Redis } from "ioredis";
import postgres from "postgres";
import { createStores, type Stores, startControlPlaneServer } from "../src/app.js";
import { migrate } from "../src/db/migrate.js";
import { connectPostgres, type Sql } from "../src/db/postgres.js";
import { lostExecutionError } from "../src/executions/execution-store.js";
import { createExecutionWaiter } from "../src/executions/execution-waiter.js";
import { type JobQueue, openJobQueue, watchAbandonedJobs } from "../src/executions/job-queue.js";
import { createGitSyncer, type GitSyncer } from "../src/git/git-sync.js";
import type { GrpcServer } from "../src/grpc/server.js";
import { bootstrapPlatformAdmin } from "../src/identity/bootstrap.js";
import { createLogger, type Logger } from "../src/log.js";
import { createControlPlaneMetrics } from "../src/metrics/control-plane-metrics.js";
import { connectNats } from "../src/nats.js";
import { connectRedis } from "../src/redis.js";
import { parseSecretKeyring } from "../src/secrets/secret-cipher.js";
import { type ApiClients, connectClients } from "../src/testing/grpc-clients.js";
import { createDiscoveryWorker, type DiscoveryWorker } from "../src/workflows/discovery-worker.js";
import { createSandboxDiscoverer } from "../src/workflows/sandbox-discoverer.js";

/** A control plane wired as main.ts wires it, over a database and key prefix of its own. */
export interface BenchControlPlane {
  sql: Sql;
  redis: Redis;
  stores: Stores;
  /** Every Redis key this instance writes starts with it. */
  redisPrefix: string;
  /** The gRPC address (127.0.0.1:port). */
  address: string;
  /** The bootstrapped platform admin's API key. */
  adminKey: string;
  /** Clients authenticated with adminKey. */
  admin: ApiClients;
  /** Clients sending no credentials (refused before any I/O: a bare gRPC round trip). */
  anonymous: ApiClients;
  /** Git binding syncs (file:// repositories only), with mirrors in a temporary folder. */
  gitSyncer: GitSyncer;
  /** Deletes this instance's Redis keys (SCAN + DEL of the prefix); returns how many. */
  flushCache(): Promise<number>;
  /** PostgreSQL statements the control plane has sent so far. */
  statements(): number;
  /** Stops the server (and dispatch), deletes the Redis keys and drops the database. */
  close(): Promise<void>;
}

/** Execution dispatch over NATS, for a control plane started with natsUrl. */
export interface BenchDispatch {
  /** This instance's JetStream stream, subject and consumer (runners bind to them). */
  names: JobDispatchNames;
  /** Module discovery in the sandbox; drain() discovers what is pending. */
  discovery: DiscoveryWorker;
  /** The NATS server's version, as it announced itself. */
  natsVersion: string;
  /** Messages the control plane's NATS connection has sent and received so far. */
  natsMessages(): { out: number; in: number };
}

interface Options {
  postgresUrl: string;
  redisUrl: string;
  /** NATS with JetStream: without it, the control plane refuses to start executions. */
  natsUrl?: string;
}

/**
 * Starts a control plane for a benchmark: creates and migrates `bifrost_bench_<random>` on the
 * server of `postgresUrl`, uses a unique Redis key prefix, bootstraps a platform admin and
 * serves gRPC on 127.0.0.1:0. Postgres and Redis clients are built the way main.ts builds
 * them (same pool size and options), so the figures describe the real wiring. With
 * `natsUrl`, executions are dispatched as main.ts dispatches them, on a JetStream stream of
 * this instance's own (deleted by close()), and modules are discovered in the sandbox.
 */
export async function startBenchControlPlane(
  options: Options & { natsUrl: string },
): Promise<BenchControlPlane & { dispatch: BenchDispatch }>;
export async function startBenchControlPlane(options: Options): Promise<BenchControlPlane>;
export async function startBenchControlPlane(
  options: Options,
): Promise<BenchControlPlane & { dispatch?: BenchDispatch }> {
  const name = `bifrost_bench_${randomBytes(6).toString("hex")}`;
  const url = new URL(options.postgresUrl);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  const log = createLogger({ name: "bench", level: "warn" });
  const redisPrefix = `bifrost-bench:${name}:`;
  // Run in reverse order by close(), or as far as start got when it fails.
  const closers: Array<() => Promise<void>> = [
    async () => {
      const maintenance = new URL(options.postgresUrl);
      maintenance.pathname = "/postgres";
      const admin = postgres(maintenance.toString(), { max: 1, onnotice: () => {} });
      try {
        await admin`drop database if exists ${admin(name)} with (force)`;
      } finally {
        await admin.end();
      }
    },
  ];
  // Every step runs even when one fails; the first failure is rethrown at the end.
  const closeAll = async () => {
    let failure: unknown;
    for (const close of closers.splice(0).reverse()) {
      await close().catch((error: unknown) => {
        failure ??= error;
      });
    }
    if (failure) throw failure;
  };
  let started: Started;
  let redis: Redis;
  let statements = 0;
  try {
    await migrate(databaseUrl);
    const sql = await connectPostgres(databaseUrl, { onStatement: () => statements++ });
    closers.push(() => sql.end({ timeout: 5 }));
    redis = await connectRedis(options.redisUrl);
    const cache = redis;
    closers.push(async () => {
      await flushPrefix(cache, redisPrefix);
      cache.disconnect();
    });
    started = await startServer({ sql, redis, redisPrefix, log, name, closers, ...options });
  } catch (error) {
    await closeAll().catch(() => {});
    throw error;
  }
  const { stores, adminKey, server, sql, dispatch, gitSyncer } = started;
  const cache = redis;
  const address = `127.0.0.1:${server.port}`;
  const pool = connectClients(address);
  closers.push(async () => pool.close());
  return {
    sql,
    redis: cache,
    stores,
    redisPrefix,
    address,
    adminKey,
    admin: pool.as(adminKey),
    anonymous: pool.as(undefined),
    ...(dispatch && { dispatch }),
    gitSyncer,
    flushCache: () => flushPrefix(cache, redisPrefix),
    statements: () => statements,
    close: closeAll,
  };
}

/** Deletes the keys starting with `prefix` (SCAN + DEL); returns how many. */
async function flushPrefix(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== "0");
  return deleted;
}

interface Started {
  sql: Sql;
  stores: Stores;
  adminKey: string;
  server: GrpcServer;
  dispatch: BenchDispatch | undefined;
  gitSyncer: GitSyncer;
}

async function startServer(deps: {
  sql: Sql;
  redis: Redis;
  redisPrefix: string;
  log: Logger;
  name: string;
  natsUrl?: string;
  closers: Array<() => Promise<void>>;
}): Promise<Started> {
  const { sql, log, closers } = deps;
  const stores = createStores({
    sql,
    redis: deps.redis,
    log,
    settings: {
      redisKeyPrefix: deps.redisPrefix,
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
  const waiter = await createExecutionWaiter(sql);
  closers.push(() => waiter.close());
  const jobs = deps.natsUrl
    ? await openDispatch(deps.natsUrl, deps.name, sql, stores, log, closers)
    : undefined;
  const gitWorkDir = await mkdtemp(join(tmpdir(), "bifrost-bench-git-"));
  closers.push(() => rm(gitWorkDir, { recursive: true, force: true }));
  const gitRules = { allowedSchemes: ["file" as const], allowPrivateHosts: false };
  const gitSyncer = createGitSyncer({
    sql,
    modules: stores.modules,
    bindings: stores.gitBindings,
    syncs: stores.gitSyncs,
    log,
    settings: {
      ...gitRules,
      workDir: gitWorkDir,
      timeoutMs: 60_000,
      maxFiles: 20_000,
      moduleMaxBytes: 1024 * 1024,
    },
    onModulesChanged: () => {},
  });
  const server = await startControlPlaneServer({
    sql,
    stores,
    log,
    listen: "127.0.0.1:0",
    git: { syncer: gitSyncer, rules: gitRules, minPollSeconds: 30 },
    queue: jobs?.queue ?? {
      publish: async () => {
        throw new Error("this benchmark's control plane was started without NATS");
      },
    },
    waiter,
    // Counted as the control plane process counts them (metrics are on by default).
    metrics: createControlPlaneMetrics({ sql }),
  });
  closers.push(() => server.shutdown(1000));
  return {
    sql,
    stores,
    adminKey: bootstrap.secret,
    server,
    dispatch: jobs?.dispatch,
    gitSyncer,
  };
}

/**
 * The job queue on a stream named after this instance, the abandoned-job watch and module
 * discovery in the sandbox, wired as main.ts wires them.
 */
async function openDispatch(
  natsUrl: string,
  name: string,
  sql: Sql,
  stores: Stores,
  log: Logger,
  closers: Array<() => Promise<void>>,
): Promise<{ queue: JobQueue; dispatch: BenchDispatch }> {
  const names = jobDispatchNames(name);
  const nats = await connectNats(natsUrl);
  closers.push(() => nats.close());
  closers.push(async () => {
    const manager = await jetstreamManager(nats);
    await manager.streams.delete(names.stream);
  });
  const queue = await openJobQueue(nats, names, {
    maxDeliver: 3,
    ackWaitMs: 30_000,
    duplicateWindowMs: 60_000,
  });
  const abandoned = await watchAbandonedJobs(
    nats,
    names,
    (job, deliveries) => stores.executions.fail(job.executionId, lostExecutionError(deliveries)),
    (error) => log.error({ err: error }, "abandoned job handling failed"),
  );
  closers.push(() => abandoned.stop());
  const workDir = await mkdtemp(join(tmpdir(), "bifrost-bench-discovery-"));
  closers.push(() => rm(workDir, { recursive: true, force: true }));
  // The sandbox runs as another uid, which must be able to reach the trees below it.
  await chmod(workDir, 0o711);
  const discoverer = await createSandboxDiscoverer({ workDir, log });
  closers.push(() => discoverer.close());
  const discovery = createDiscoveryWorker({
    sql,
    modules: stores.modules,
    workflows: stores.workflows,
    discover: discoverer,
    log,
  });
  closers.push(() => discovery.stop());
  const natsVersion = nats.info?.version ?? "unknown";
  const natsMessages = () => {
    const stats = nats.stats();
    return { out: stats.outMsgs, in: stats.inMsgs };
  };
  return { queue, dispatch: { names, discovery, natsVersion, natsMessages } };
}
