import type { Redis } from "ioredis";
import { createAuditService } from "./audit/audit-service.js";
import { createPolicy } from "./auth/policy.js";
import { createConfigService } from "./config-store/config-service.js";
import type { ConfigStore } from "./config-store/config-store.js";
import { createConfigStore } from "./config-store/config-store.js";
import type { Sql } from "./db/postgres.js";
import { createBootHintViews } from "./executions/boot-hints.js";
import { createDataProviderOptions } from "./executions/data-provider-options.js";
import { createDispatchMarks } from "./executions/dispatch-marks.js";
import { createExecutionService } from "./executions/execution-service.js";
import { createExecutionStore, type ExecutionStore } from "./executions/execution-store.js";
import type { ExecutionWaiter } from "./executions/execution-waiter.js";
import type { JobQueue } from "./executions/job-queue.js";
import { createRunnerService } from "./executions/runner-service.js";
import { sandboxView } from "./executions/sandbox-view.js";
import { createGitBindingStore, type GitBindingStore } from "./git/binding-store.js";
import { createGitBindingService } from "./git/git-binding-service.js";
import type { GitSyncer } from "./git/git-sync.js";
import type { RepositoryUrlRules } from "./git/repository-url.js";
import { createGitSyncStore, type GitSyncStore } from "./git/sync-store.js";
import { type GrpcServer, startGrpcServer } from "./grpc/server.js";
import type { EdgeDeps } from "./grpc/unary.js";
import { createIdentityService } from "./identity/identity-service.js";
import { createIdentityStore, type IdentityStore } from "./identity/identity-store.js";
import type { Logger } from "./log.js";
import type { ControlPlaneMetrics } from "./metrics/control-plane-metrics.js";
import { createModuleCache } from "./modules/module-cache.js";
import { createModuleService } from "./modules/module-service.js";
import { createModuleStore, type ModuleStore } from "./modules/module-store.js";
import { createOrganizationService } from "./organizations/organization-service.js";
import {
  createOrganizationStore,
  type OrganizationStore,
} from "./organizations/organization-store.js";
import type { SecretKeyring } from "./secrets/secret-cipher.js";
import { createSecretService } from "./secrets/secret-service.js";
import { createSecretStore, type SecretStore } from "./secrets/secret-store.js";
import { createWorkflowService } from "./workflows/workflow-service.js";
import { createWorkflowStore, type WorkflowStore } from "./workflows/workflow-store.js";

/** The control plane's stores, wired to their clients. */
export interface Stores {
  /** The Redis client and key prefix, for caches beside the module cache. */
  redis: { client: Redis; prefix: string };
  organizations: OrganizationStore;
  identity: IdentityStore;
  modules: ModuleStore;
  config: ConfigStore;
  secrets: SecretStore;
  workflows: WorkflowStore;
  executions: ExecutionStore;
  gitBindings: GitBindingStore;
  gitSyncs: GitSyncStore;
}

/** Settings the stores and server need (a subset of Config, so tests can pass their own). */
export interface AppSettings {
  redisKeyPrefix: string;
  moduleCacheTtlSeconds: number;
  moduleMaxBytes: number;
  secretKeyring: SecretKeyring;
  grpcListen: string;
}

/** Builds every store over the given clients. */
export function createStores(deps: {
  sql: Sql;
  redis: Redis;
  log: Logger;
  settings: AppSettings;
}): Stores {
  const { sql, redis, log, settings } = deps;
  const cache = createModuleCache(redis, {
    prefix: settings.redisKeyPrefix,
    ttlSeconds: settings.moduleCacheTtlSeconds,
  });
  const config = createConfigStore(sql);
  const secrets = createSecretStore(sql, settings.secretKeyring);
  const workflows = createWorkflowStore(sql);
  const identity = createIdentityStore(sql);
  return {
    redis: { client: redis, prefix: settings.redisKeyPrefix },
    organizations: createOrganizationStore(sql, {
      changingPrincipals: identity.forgettingKeys,
    }),
    identity,
    modules: createModuleStore({ sql, cache, log, maxModuleBytes: settings.moduleMaxBytes }),
    config,
    secrets,
    workflows,
    executions: createExecutionStore({ sql, workflows, config, secrets }),
    gitBindings: createGitBindingStore(sql, settings.secretKeyring),
    gitSyncs: createGitSyncStore(sql),
  };
}

/**
 * How long a view read for one job's boot hint serves the next jobs of that organization.
 * Short: a stale hint costs a sandbox started for nothing (the claim's view decides).
 */
const bootHintTtlMs = 1000;

/**
 * How long a published job's dispatch mark waits to go out with others (dispatch-marks.ts),
 * unless its claim records the dispatch first. Far below the dispatch retry's 5 s: a mark lost
 * with the process costs a duplicate publish, which JetStream drops. Under load (55
 * executions/s) a batch every 250 ms is 0.07 statements per execution; every 50 ms it was 0.35.
 */
const dispatchMarkDelayMs = 250;

/** Starts the gRPC server exposing every service over the given stores. */
export async function startControlPlaneServer(deps: {
  sql: Sql;
  stores: Stores;
  log: Logger;
  listen: string;
  /** Called after module writes (the discovery worker's notify). */
  onModulesChanged?: () => void;
  /** Where executions are dispatched to runners. */
  queue: JobQueue;
  waiter: ExecutionWaiter;
  /** Git bindings: the syncer and the rules repository URLs must follow. */
  git: { syncer: GitSyncer; rules: RepositoryUrlRules; minPollSeconds: number };
  /** Counts every RPC by method and status code, when metrics are served. */
  metrics?: ControlPlaneMetrics;
}): Promise<GrpcServer> {
  const { sql, stores, log } = deps;
  // Every RPC authenticates: with changes followed, a key's check is a statement only when
  // it is not remembered (identity-store.ts).
  const principals = await stores.identity.followChanges();
  const edge: EdgeDeps = {
    identity: stores.identity,
    log,
    ...(deps.metrics && { observe: deps.metrics.rpc }),
  };
  const bootHints = createBootHintViews(
    (organizationId) =>
      sandboxView({ modules: stores.modules, config: stores.config }, organizationId),
    { ttlMs: bootHintTtlMs },
  );
  const policy = createPolicy(stores.identity, {
    executionOrganization: async (id) =>
      (await stores.executions.get(id).catch(() => undefined))?.organizationId,
    gitBindingScope: async (id) => (await stores.gitBindings.get(id).catch(() => undefined))?.scope,
    gitSyncScope: async (id) => (await stores.gitSyncs.get(id).catch(() => undefined))?.scope,
  });
  const marks = createDispatchMarks({
    executions: stores.executions,
    log,
    maxDelayMs: dispatchMarkDelayMs,
  });
  const server = await startGrpcServer(
    {
      "bifrost.v1.OrganizationService": createOrganizationService(
        edge,
        policy,
        stores.organizations,
        stores.modules,
      ),
      "bifrost.v1.IdentityService": createIdentityService(edge, policy, stores.identity),
      "bifrost.v1.ModuleService": createModuleService(edge, policy, stores.modules, () => {
        bootHints.clear();
        deps.onModulesChanged?.();
      }),
      "bifrost.v1.ConfigService": createConfigService(edge, policy, stores.config),
      "bifrost.v1.SecretService": createSecretService(edge, policy, stores.secrets),
      "bifrost.v1.AuditService": createAuditService(edge, policy, sql),
      "bifrost.v1.WorkflowService": createWorkflowService(
        edge,
        policy,
        stores.workflows,
        stores.config,
      ),
      "bifrost.v1.ExecutionService": createExecutionService(edge, policy, {
        executions: stores.executions,
        queue: deps.queue,
        marks,
        waiter: deps.waiter,
        log,
        sandboxView: (organizationId) => bootHints.get(organizationId),
        dataProviders: createDataProviderOptions({
          executions: stores.executions,
          queue: deps.queue,
          marks,
          waiter: deps.waiter,
          log,
          workflows: stores.workflows,
          modules: stores.modules,
          redis: stores.redis.client,
          prefix: stores.redis.prefix,
        }),
      }),
      "bifrost.v1.RunnerService": createRunnerService(edge, policy, {
        executions: stores.executions,
        modules: stores.modules,
        config: stores.config,
        sql,
        waiter: deps.waiter,
        marks,
      }),
      "bifrost.v1.GitBindingService": createGitBindingService(edge, policy, {
        bindings: stores.gitBindings,
        syncs: stores.gitSyncs,
        syncer: deps.git.syncer,
        rules: deps.git.rules,
        minPollSeconds: deps.git.minPollSeconds,
      }),
    },
    { listen: deps.listen, log },
  ).catch(async (error: unknown) => {
    await principals.close();
    throw error;
  });
  return {
    port: server.port,
    async shutdown(graceMs) {
      await server.shutdown(graceMs);
      // The calls that published jobs are done: write their marks before the pool closes.
      await marks.flush();
      await principals.close();
    },
  };
}
