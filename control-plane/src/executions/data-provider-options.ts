import { createHash } from "node:crypto";
import { checkOptions, type DataProviderOption } from "@bifrost/sdk/params";
import type { Redis } from "ioredis";
import type { Actor } from "../audit/audit-log.js";
import { deadlineExceeded, failedPrecondition, invalidArgument } from "../errors.js";
import type { ModuleStore } from "../modules/module-store.js";
import type { DataProviderRecord, WorkflowStore } from "../workflows/workflow-store.js";
import { awaitExecution, type DispatchDeps, dispatchExecution } from "./dispatch.js";

/** A data provider's timeout when the caller gives none, and the most a caller may ask for. */
export const dataProviderTimeouts = { defaultSeconds: 30, maxSeconds: 120 };

/**
 * Time allowed on top of the provider's own timeout for queueing, claiming and starting the
 * sandbox; past it the execution is cancelled and the caller gets DEADLINE_EXCEEDED.
 */
const startupGraceMs = 10_000;

/** Options as returned: fresh from an execution, or cached from an earlier one. */
export interface DataProviderOptionsResult {
  options: DataProviderOption[];
  cached: boolean;
  /** The execution that produced the options. */
  executionId: string;
  producedAt: Date;
}

interface CachedOptions {
  options: DataProviderOption[];
  executionId: string;
  producedAt: string;
}

/** JSON with object keys sorted, so equal inputs give one cache key whatever their order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The cache key of a provider's options for one organization. The organization id is in the
 * clear (so no hash collision can cross organizations, and an organization's entries can be
 * found); the hash covers which provider won the cascade (scope, module, export, the module's
 * discovered content hash), the organization's effective-tree fingerprint — which moves with
 * any change of code the provider may import, so new code never gets old options — and the
 * inputs.
 */
export function dataProviderCacheKey(
  prefix: string,
  organizationId: string,
  provider: DataProviderRecord,
  viewFingerprint: string,
  inputs: Record<string, unknown>,
): string {
  const scope = provider.scope.kind === "global" ? "global" : provider.scope.organizationId;
  const identity = canonicalJson([
    provider.name,
    scope,
    provider.modulePath,
    provider.exportName,
    provider.moduleHash,
    viewFingerprint,
    inputs,
  ]);
  const digest = createHash("sha256").update(identity).digest("hex");
  return `${prefix}dp-options:${organizationId}:${digest}`;
}

/** Runs data providers as executions and caches their options in Redis. */
export interface DataProviderOptionsService {
  /**
   * The options of the provider an organization resolves under `name` (its own, else the
   * global one). Served from the cache when the provider's cacheTtlSeconds is positive, the
   * caller did not ask for `noCache` and an entry exists; otherwise runs it as an execution
   * of kind data_provider and waits up to its timeout (plus startup grace).
   */
  get(
    actor: Actor,
    organizationId: string,
    name: string,
    inputs: Record<string, unknown>,
    options: { noCache: boolean; timeoutSeconds: number },
  ): Promise<DataProviderOptionsResult>;
}

/** Creates the service over the execution pipeline and a Redis client. */
export function createDataProviderOptions(
  deps: DispatchDeps & {
    workflows: WorkflowStore;
    modules: ModuleStore;
    redis: Redis;
    /** Prefix of every Redis key (the control plane's redisKeyPrefix). */
    prefix: string;
  },
): DataProviderOptionsService {
  const readCache = async (key: string): Promise<CachedOptions | undefined> => {
    try {
      const raw = await deps.redis.get(key);
      return raw ? (JSON.parse(raw) as CachedOptions) : undefined;
    } catch (error) {
      // Redis is a cache, never the truth: a failed read is a miss.
      deps.log.warn({ err: error }, "data provider cache read failed");
      return undefined;
    }
  };
  const writeCache = async (key: string, value: CachedOptions, ttlSeconds: number) => {
    try {
      await deps.redis.set(key, JSON.stringify(value), "EX", ttlSeconds);
    } catch (error) {
      deps.log.warn({ err: error }, "data provider cache write failed");
    }
  };

  /** Runs the provider as an execution, checks its options and caches them under `key`. */
  const runProvider = async ({
    actor,
    organizationId,
    provider,
    inputs,
    timeoutSeconds,
    key,
    ttl,
  }: {
    actor: Actor;
    organizationId: string;
    provider: DataProviderRecord;
    inputs: Record<string, unknown>;
    timeoutSeconds: number;
    key: string | undefined;
    ttl: number;
  }): Promise<DataProviderOptionsResult> => {
    const record = await deps.executions.startDataProvider(
      actor,
      organizationId,
      provider,
      inputs,
      timeoutSeconds,
    );
    await dispatchExecution(deps, record);
    const ended = await awaitExecution(
      deps.waiter,
      record.id,
      Date.now() + timeoutSeconds * 1000 + startupGraceMs,
      () => deps.executions.get(record.id),
      (current) => current.status,
    );
    const label = `data provider "${provider.name}"`;
    switch (ended.status) {
      case "succeeded":
        break;
      case "timed_out":
        throw deadlineExceeded(
          `${label} did not return within its ${timeoutSeconds} s timeout (execution ${record.id})`,
        );
      case "queued":
      case "running":
        // Nobody is waiting any more: stop the run rather than let it occupy a runner.
        await deps.executions.cancel(actor, record.id);
        throw deadlineExceeded(
          `${label} did not return within ${timeoutSeconds} s (execution ${record.id} was still ${ended.status}; it was cancelled)`,
        );
      case "cancelled":
        throw failedPrecondition(`${label} was cancelled (execution ${record.id})`);
      case "failed": {
        // The runner redacted every secret the run read from the message.
        const error = ended.error;
        throw failedPrecondition(
          `${label} failed (${error?.kind ?? "error"}): ${error?.message ?? "no reason given"} (execution ${record.id})`,
        );
      }
    }
    // What the sandbox sent comes from tenant code: check it here too.
    const checked = checkOptions(ended.result);
    if ("problem" in checked) {
      throw failedPrecondition(
        `${label} returned invalid options: ${checked.problem} (execution ${record.id})`,
      );
    }
    const producedAt = ended.finishedAt ?? new Date();
    if (key) {
      await writeCache(
        key,
        {
          options: checked.value,
          executionId: record.id,
          producedAt: producedAt.toISOString(),
        },
        ttl,
      );
    }
    return { options: checked.value, cached: false, executionId: record.id, producedAt };
  };

  // Runs under way per cache key: callers that miss the cache together (a form opened by
  // several people at once) share one run instead of each starting the provider.
  const running = new Map<string, Promise<DataProviderOptionsResult>>();

  return {
    async get(actor, organizationId, name, inputs, options) {
      const timeoutSeconds = options.timeoutSeconds || dataProviderTimeouts.defaultSeconds;
      if (timeoutSeconds < 1 || timeoutSeconds > dataProviderTimeouts.maxSeconds) {
        throw invalidArgument(
          `timeout_seconds ${options.timeoutSeconds} must be between 0 (default ${dataProviderTimeouts.defaultSeconds}) and ${dataProviderTimeouts.maxSeconds}`,
        );
      }
      const { dataProvider: provider } = await deps.workflows.resolveDataProvider(
        organizationId,
        name,
      );
      const ttl = provider.metadata.cacheTtlSeconds;
      const { fingerprint } = await deps.modules.importMap(organizationId);
      const key =
        ttl > 0
          ? dataProviderCacheKey(deps.prefix, organizationId, provider, fingerprint, inputs)
          : undefined;
      if (key && !options.noCache) {
        const hit = await readCache(key);
        if (hit) {
          return {
            options: hit.options,
            cached: true,
            executionId: hit.executionId,
            producedAt: new Date(hit.producedAt),
          };
        }
        const shared = running.get(key);
        if (shared) return { ...(await shared), cached: true };
      }
      const run = () =>
        runProvider({ actor, organizationId, provider, inputs, timeoutSeconds, key, ttl });
      if (!key) return run();
      const run$ = run();
      running.set(key, run$);
      try {
        return await run$;
      } finally {
        if (running.get(key) === run$) running.delete(key);
      }
    },
  };
}
