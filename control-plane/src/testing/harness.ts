import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type JobDispatchNames, jobDispatchNames } from "@bifrost/proto";
import { jetstreamManager } from "@nats-io/jetstream";
import { Redis } from "ioredis";
import postgres from "postgres";
import { inject } from "vitest";
import { createStores, type Stores, startControlPlaneServer } from "../app.js";
import type { Sql } from "../db/postgres.js";
import { startDispatchRetry } from "../executions/dispatch-retry.js";
import { lostExecutionError } from "../executions/execution-store.js";
import { createExecutionWaiter } from "../executions/execution-waiter.js";
import { openJobQueue, watchAbandonedJobs } from "../executions/job-queue.js";
import { createGitSyncer, type GitSyncer, type GitSyncHooks } from "../git/git-sync.js";
import type { GrpcServer } from "../grpc/server.js";
import { bootstrapPlatformAdmin } from "../identity/bootstrap.js";
import { createLogger } from "../log.js";
import {
  type ControlPlaneMetrics,
  createControlPlaneMetrics,
} from "../metrics/control-plane-metrics.js";
import { connectNats } from "../nats.js";
import { parseSecretKeyring } from "../secrets/secret-cipher.js";
import { createDiscoveryWorker, type DiscoveryWorker } from "../workflows/discovery-worker.js";
import { createSandboxDiscoverer } from "../workflows/sandbox-discoverer.js";
import { type ApiClients, type ClientPool, connectClients } from "./grpc-clients.js";

/** A control plane running for one test file: its own database, Redis key prefix and port. */
export interface TestControlPlane {
  sql: Sql;
  redis: Redis;
  stores: Stores;
  /** Redis key prefix of this instance (every cache key starts with it). */
  redisPrefix: string;
  databaseUrl: string;
  /** The platform admin's API key created at bootstrap. */
  adminKey: string;
  /** This file's JetStream names (runners in tests pull from them). */
  dispatch: JobDispatchNames;
  /** The prefix the dispatch names derive from (a runner process's BIFROST_NATS_PREFIX). */
  natsPrefix: string;
  /** The NATS server this control plane publishes to. */
  natsUrl: string;
  /** The gRPC address of the server; it stays the same across stop() and start(). */
  address: string;
  /** Module discovery; tests call drain() to discover what is pending. */
  discovery: DiscoveryWorker;
  /** The git syncer behind GitBindingService (tests start webhooks and pollers on it). */
  gitSyncer: GitSyncer;
  /** This instance's work directory (discovery trees, git mirrors). */
  workDir: string;
  /** Its metrics, when started with `metrics: true` (counting every RPC). */
  metrics?: ControlPlaneMetrics;
  /** Clients authenticating with the given key (undefined = no key). */
  api(apiKey: string | undefined): ApiClients;
  /**
   * Stops serving as a control plane process that exits would: the gRPC server (in-flight
   * calls get a moment to finish), its NATS connection, the job-queue watchers. The
   * database, Redis keys and the stream stay.
   */
  stop(): Promise<void>;
  /** Serves again at the same address, over the same database and stream. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Git rules of test control planes: test repositories live on local paths and loopback
 * servers, which production denies by default.
 */
export const testGitSettings = {
  allowedSchemes: ["file", "http", "https", "ssh"] as const,
  allowPrivateHosts: true,
  timeoutMs: 20_000,
  maxFiles: 5_000,
};

/** Test keyring: fixed keys so tests can rotate between them. */
export const testKeyring = parseSecretKeyring(
  `test-k1:${Buffer.alloc(32, 1).toString("base64")},test-k2:${Buffer.alloc(32, 2).toString("base64")}`,
  "test-k1",
);

/**
 * Starts a real control plane (gRPC on 127.0.0.1:0) over a fresh database cloned from the
 * migrated template and a unique Redis key prefix. Options let a test pick the Redis database
 * (to flush it alone) or the keyring.
 */
export async function startTestControlPlane(
  options: {
    redisDb?: number;
    keyring?: typeof testKeyring;
    moduleMaxBytes?: number;
    jobMaxDeliver?: number;
    jobAckWaitMs?: number;
    gitHooks?: GitSyncHooks;
    /** NATS to use instead of the shared server (a test that restarts its own). */
    natsUrl?: string;
    /** Count every RPC into `metrics`, as the control plane process does. */
    metrics?: boolean;
  } = {},
): Promise<TestControlPlane> {
  const name = `${inject("testDatabasePrefix")}${randomBytes(6).toString("hex")}`;
  const admin = postgres(inject("postgresUrl"), { max: 1, onnotice: () => {} });
  await admin`create database ${admin(name)} template ${admin(inject("templateDatabase"))}`;
  await admin.end();
  const url = new URL(inject("postgresUrl"));
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();

  const sql = postgres(databaseUrl, {
    max: 10,
    onnotice: () => {},
    transform: { undefined: null },
  });
  const redisUrl = new URL(inject("redisUrl"));
  redisUrl.pathname = `/${options.redisDb ?? 0}`;
  const redis = new Redis(redisUrl.toString(), { maxRetriesPerRequest: 2 });
  const redisPrefix = `bifrost-test:${name}:`;
  const log = createLogger({ name: "test", level: process.env.LOG_LEVEL ?? "silent" });
  const stores = createStores({
    sql,
    redis,
    log,
    settings: {
      redisKeyPrefix: redisPrefix,
      moduleCacheTtlSeconds: 3600,
      moduleMaxBytes: options.moduleMaxBytes ?? 256 * 1024,
      secretKeyring: options.keyring ?? testKeyring,
      grpcListen: "127.0.0.1:0",
    },
  });
  const metrics = options.metrics ? createControlPlaneMetrics({ sql }) : undefined;
  const bootstrap = await bootstrapPlatformAdmin(sql, stores.identity, {
    email: "admin@test.local",
    presetKey: undefined,
  });
  if (!bootstrap.created) throw new Error("expected a fresh database to bootstrap an admin");
  const workDir = await mkdtemp(join(tmpdir(), "bifrost-cp-test-"));
  await chmod(workDir, 0o711);
  const discoverer = await createSandboxDiscoverer({ workDir, log, moduleTimeoutMs: 5_000 });
  const discovery = createDiscoveryWorker({
    sql,
    modules: stores.modules,
    workflows: stores.workflows,
    discover: discoverer,
    log,
  });
  // A private stream, subject and consumer per test file on the shared NATS.
  const dispatch = jobDispatchNames(name);
  const natsUrl = options.natsUrl ?? inject("natsUrl");
  const gitSyncer = createGitSyncer({
    sql,
    modules: stores.modules,
    bindings: stores.gitBindings,
    syncs: stores.gitSyncs,
    log,
    settings: { ...testGitSettings, workDir, moduleMaxBytes: options.moduleMaxBytes ?? 256 * 1024 },
    onModulesChanged: () => {},
    ...(options.gitHooks && { hooks: options.gitHooks }),
  });
  // What a control plane process holds besides its database: started again by start().
  const serve = async (listen: string) => {
    const nats = await connectNats(natsUrl);
    const queue = await openJobQueue(nats, dispatch, {
      maxDeliver: options.jobMaxDeliver ?? 3,
      ackWaitMs: options.jobAckWaitMs ?? 30_000,
      duplicateWindowMs: 60_000,
    });
    const waiter = await createExecutionWaiter(sql);
    const abandoned = await watchAbandonedJobs(
      nats,
      dispatch,
      (job, deliveries) => stores.executions.fail(job.executionId, lostExecutionError(deliveries)),
      () => {},
    );
    const dispatchRetry = startDispatchRetry({
      executions: stores.executions,
      queue,
      everyMs: 250,
      olderThanMs: 500,
      log,
    });
    const server: GrpcServer = await startControlPlaneServer({
      sql,
      stores,
      log,
      listen,
      queue,
      waiter,
      git: { syncer: gitSyncer, rules: testGitSettings, minPollSeconds: 1 },
      ...(metrics && { metrics }),
    });
    return {
      nats,
      port: server.port,
      async stop() {
        await server.shutdown(1000);
        await dispatchRetry.stop();
        await waiter.close();
        await abandoned.stop();
        await nats.close();
      },
    };
  };
  let serving: Awaited<ReturnType<typeof serve>> | undefined = await serve("127.0.0.1:0");
  const address = `127.0.0.1:${serving.port}`;
  const pool: ClientPool = connectClients(address);

  return {
    sql,
    redis,
    stores,
    redisPrefix,
    databaseUrl,
    adminKey: bootstrap.secret,
    discovery,
    ...(metrics && { metrics }),
    gitSyncer,
    workDir,
    dispatch,
    natsPrefix: name,
    natsUrl,
    address,
    api: (apiKey) => pool.as(apiKey),
    async stop() {
      await serving?.stop();
      serving = undefined;
    },
    async start() {
      if (serving) return;
      serving = await serve(address);
    },
    async close() {
      pool.close();
      await discovery.stop();
      await discoverer.close();
      if (serving) {
        const nats = serving.nats;
        await jetstreamManager(nats)
          .then((jsm) => jsm.streams.delete(dispatch.stream))
          .catch(() => {});
        await serving.stop();
      }
      await rm(workDir, { recursive: true, force: true });
      await sql.end({ timeout: 5 });
      const keys = await redis.keys(`${redisPrefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      const cleanup = postgres(inject("postgresUrl"), { max: 1, onnotice: () => {} });
      await cleanup`drop database if exists ${cleanup(name)} with (force)`;
      await cleanup.end();
    },
  };
}
