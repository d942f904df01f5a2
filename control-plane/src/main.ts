// The control plane's composition root: the only module with side effects at import time.
import { join } from "node:path";
import { jobDispatchNames } from "@bifrost/proto";
import { startMetricsServer } from "@bifrost/runner/metrics";
import { createStores, startControlPlaneServer } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { migrate } from "./db/migrate.js";
import { connectPostgres } from "./db/postgres.js";
import { startDispatchRetry } from "./executions/dispatch-retry.js";
import { lostExecutionError } from "./executions/execution-store.js";
import { createExecutionWaiter } from "./executions/execution-waiter.js";
import { openJobQueue, watchAbandonedJobs } from "./executions/job-queue.js";
import { startGitPoller } from "./git/git-poller.js";
import { createGitSyncer } from "./git/git-sync.js";
import { startWebhookServer } from "./git/webhook-server.js";
import { bootstrapPlatformAdmin, bootstrapRunnerKey } from "./identity/bootstrap.js";
import { createLogger } from "./log.js";
import { createControlPlaneMetrics } from "./metrics/control-plane-metrics.js";
import { connectNats } from "./nats.js";
import { connectRedis } from "./redis.js";
import { startScheduler } from "./schedules/scheduler.js";
import { createDiscoveryWorker } from "./workflows/discovery-worker.js";
import { createSandboxDiscoverer } from "./workflows/sandbox-discoverer.js";

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(2);
}

const log = createLogger({ name: "bifrost-control-plane", level: config.logLevel });

try {
  const applied = await migrate(config.databaseUrl, { logger: log });
  if (applied.length) log.info({ applied }, "migrations applied");
  const sql = await connectPostgres(config.databaseUrl);
  const redis = await connectRedis(config.redisUrl);
  const stores = createStores({ sql, redis, log, settings: config });

  const bootstrap = await bootstrapPlatformAdmin(sql, stores.identity, {
    email: config.bootstrapAdminEmail,
    presetKey: config.bootstrapAdminKey,
  });
  if (bootstrap.created && !bootstrap.fromConfig) {
    // Printed once, on the terminal, never to the structured log: this is the only copy.
    process.stderr.write(
      `\n  First start: created platform admin ${bootstrap.email}.\n  API key (shown once, store it now):\n\n    ${bootstrap.secret}\n\n`,
    );
  } else if (bootstrap.created) {
    log.info(
      { email: bootstrap.email },
      "platform admin created with the configured bootstrap key",
    );
  }

  if (
    config.bootstrapRunnerKey &&
    (await bootstrapRunnerKey(sql, stores.identity, config.bootstrapRunnerKey))
  ) {
    log.info("runner identity installed with the configured bootstrap runner key");
  }

  const warmed = await stores.modules.warmCache();
  log.info({ modules: warmed }, "module cache warmed");

  const discoverer = await createSandboxDiscoverer({
    workDir: join(config.workDir, "discovery"),
    log,
    ...(config.discoverySandboxUid !== undefined && { sandboxUid: config.discoverySandboxUid }),
  });
  const discovery = createDiscoveryWorker({
    sql,
    modules: stores.modules,
    workflows: stores.workflows,
    discover: discoverer,
    log: log.child({ component: "discovery" }),
  });
  discovery.start();

  const nats = await connectNats(config.natsUrl);
  const queue = await openJobQueue(nats, jobDispatchNames(config.natsPrefix), {
    maxDeliver: config.jobMaxDeliver,
    ackWaitMs: config.jobAckWaitMs,
    duplicateWindowMs: 10 * 60_000,
  });
  const waiter = await createExecutionWaiter(sql);
  const abandoned = await watchAbandonedJobs(
    nats,
    jobDispatchNames(config.natsPrefix),
    (job, deliveries) => stores.executions.fail(job.executionId, lostExecutionError(deliveries)),
    (error) => log.error({ err: error }, "abandoned job handling failed"),
  );

  // Safety net behind the max-deliveries advisory: fail executions whose runner was lost.
  const reconciler = setInterval(() => {
    stores.executions
      .reconcileStale({
        maxDeliver: config.jobMaxDeliver,
        ackWaitMs: config.jobAckWaitMs,
        slackSeconds: 60,
      })
      .then(
        (ids) =>
          ids.length && log.warn({ executions: ids }, "stale running executions failed as lost"),
      )
      .catch((error: unknown) => log.error({ err: error }, "reconciling executions failed"));
  }, 60_000);

  // Executions that could not be published at start (NATS away) are published once it is back.
  const dispatchRetry = startDispatchRetry({
    executions: stores.executions,
    queue,
    everyMs: 5_000,
    olderThanMs: 5_000,
    log,
  });

  // Workflows' cron schedules; every replica runs one, and each fire starts one run.
  const scheduler = startScheduler({
    workflows: stores.workflows,
    config: stores.config,
    executions: stores.executions,
    queue,
    log: log.child({ component: "scheduler" }),
  });

  const gitSyncer = createGitSyncer({
    sql,
    modules: stores.modules,
    bindings: stores.gitBindings,
    syncs: stores.gitSyncs,
    log: log.child({ component: "git" }),
    settings: { ...config.git, workDir: config.workDir, moduleMaxBytes: config.moduleMaxBytes },
    onModulesChanged: () => discovery.notify(),
  });
  // Served before the API is, so a control plane that cannot serve them fails to start.
  const metrics = createControlPlaneMetrics({ sql });
  const metricsServer = config.metricsListen
    ? await startMetricsServer(metrics.registry, config.metricsListen)
    : undefined;
  if (metricsServer) log.info({ address: metricsServer.address }, "metrics served at /metrics");
  const server = await startControlPlaneServer({
    sql,
    stores,
    log,
    listen: config.grpcListen,
    onModulesChanged: () => discovery.notify(),
    queue,
    waiter,
    git: { syncer: gitSyncer, rules: config.git, minPollSeconds: config.git.minPollSeconds },
    metrics,
  });
  const webhooks = await startWebhookServer({
    listen: config.httpListen,
    bindings: stores.gitBindings,
    syncer: gitSyncer,
    log: log.child({ component: "git-webhook" }),
  });
  log.info({ address: webhooks.address }, "git webhook listener started");
  const poller = startGitPoller({
    bindings: stores.gitBindings,
    syncer: gitSyncer,
    log: log.child({ component: "git-poll" }),
    intervalMs: config.git.pollTickMs,
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    clearInterval(reconciler);
    await server.shutdown(config.shutdownGraceMs);
    await poller.stop();
    await scheduler.stop();
    await webhooks.close();
    await metricsServer?.close();
    await dispatchRetry.stop();
    await discovery.stop();
    await discoverer.close();
    await waiter.close();
    await abandoned.stop();
    await nats.drain();
    await sql.end({ timeout: 5 });
    redis.disconnect();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
} catch (error) {
  log.fatal({ err: error }, "control plane failed to start");
  process.exit(1);
}
