import type { ChainableCommander, Redis } from "ioredis";
import { type Scope, scopeCacheSegment } from "../scope.js";

/**
 * What the cache knows of one (scope, path): the module's content hash at a revision, or
 * that no module exists there (`hash: null`, a tombstone).
 */
export interface CachedPointer {
  revision: number;
  hash: string | null;
  /** Timestamps of the module row (epoch ms), so a cache hit reports the same metadata. */
  createdAt?: number;
  updatedAt?: number;
}

/** Module content cache in Redis. Postgres is the source of truth; this is never consulted for writes. */
export interface ModuleCache {
  /** Pointers of the organization's and the global (scope, path), in that order; undefined = miss. */
  getPointers(
    organizationId: string,
    path: string,
  ): Promise<[CachedPointer | undefined, CachedPointer | undefined]>;
  /** Records a pointer unless the cache already holds one at the same or a newer revision. */
  putPointer(scope: Scope, path: string, pointer: CachedPointer): Promise<void>;
  /** Content by its SHA-256; undefined = miss. */
  getBlob(hash: string): Promise<string | undefined>;
  putBlob(hash: string, content: string): Promise<void>;
  /** Drops every pointer of one organization (after the organization is deleted). */
  evictOrganization(organizationId: string): Promise<number>;
  /** Pointer and blob for many modules at once (start-up warming). */
  warm(
    entries: Iterable<{ scope: Scope; path: string; pointer: CachedPointer; content: string }>,
  ): Promise<void>;
}

// Set-if-newer: refuses a pointer older than (or as old as) the one cached, so a reader that
// loaded a row before a concurrent write committed cannot overwrite the writer's fresher
// pointer. Revision 0 (a reader that found no row) therefore only fills an empty slot.
const setIfNewerScript = `
local current = redis.call('GET', KEYS[1])
if current then
  local revision = tonumber(string.match(current, '^(%d+):'))
  if revision and revision >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'EX', ARGV[3])
return 1`;

type PipelineWithScript = ChainableCommander & {
  bifrostSetIfNewer(key: string, revision: number, value: string, ttl: number): ChainableCommander;
};

type RedisWithScript = Redis & {
  bifrostSetIfNewer(key: string, revision: number, value: string, ttl: number): Promise<number>;
};

/**
 * Creates the cache. Keys are scope-qualified — `{prefix}module:{organizationId|global}:{path}`
 * holds "revision:hash" (or "revision:-" for no module) — and content is stored once under
 * `{prefix}blob:{sha256}`. A blob is only ever found through a pointer of the caller's own
 * scope chain, and its key is its content's hash, so no key can serve one organization's
 * code to another.
 */
export function createModuleCache(
  redis: Redis,
  options: { prefix: string; ttlSeconds: number },
): ModuleCache {
  const { prefix, ttlSeconds } = options;
  if (!("bifrostSetIfNewer" in redis)) {
    redis.defineCommand("bifrostSetIfNewer", { numberOfKeys: 1, lua: setIfNewerScript });
  }
  const client = redis as RedisWithScript;
  const pointerKey = (scope: Scope, path: string) =>
    `${prefix}module:${scopeCacheSegment(scope)}:${path}`;
  const blobKey = (hash: string) => `${prefix}blob:${hash}`;

  return {
    async getPointers(organizationId, path) {
      const [own, global] = await client.mget(
        `${prefix}module:${organizationId}:${path}`,
        `${prefix}module:global:${path}`,
      );
      return [parsePointer(own), parsePointer(global)];
    },
    async putPointer(scope, path, pointer) {
      await client.bifrostSetIfNewer(
        pointerKey(scope, path),
        pointer.revision,
        encodePointer(pointer),
        ttlSeconds,
      );
    },
    async getBlob(hash) {
      return (await client.get(blobKey(hash))) ?? undefined;
    },
    async putBlob(hash, content) {
      await client.set(blobKey(hash), content, "EX", ttlSeconds);
    },
    async evictOrganization(organizationId) {
      // SCAN, not KEYS: it does not block Redis while walking a large keyspace.
      let evicted = 0;
      const stream = client.scanStream({
        match: `${prefix}module:${organizationId}:*`,
        count: 1000,
      });
      for await (const keys of stream as AsyncIterable<string[]>) {
        if (keys.length) evicted += await client.unlink(...keys);
      }
      return evicted;
    },
    async warm(entries) {
      let pipeline = client.pipeline() as PipelineWithScript;
      let queued = 0;
      for (const entry of entries) {
        const { pointer } = entry;
        pipeline.bifrostSetIfNewer(
          pointerKey(entry.scope, entry.path),
          pointer.revision,
          encodePointer(pointer),
          ttlSeconds,
        );
        if (pointer.hash) pipeline.set(blobKey(pointer.hash), entry.content, "EX", ttlSeconds);
        if (++queued % 500 === 0) {
          await pipeline.exec();
          pipeline = client.pipeline() as PipelineWithScript;
        }
      }
      await pipeline.exec();
    },
  };
}

// Stored as "revision:hash:createdMs:updatedMs", or "revision:-" for no module. The script
// above reads only the leading revision.
function encodePointer(pointer: CachedPointer): string {
  if (!pointer.hash) return "-";
  return `${pointer.hash}:${pointer.createdAt ?? 0}:${pointer.updatedAt ?? 0}`;
}

function parsePointer(raw: string | null | undefined): CachedPointer | undefined {
  if (!raw) return undefined;
  const [revisionText, hash, created, updated] = raw.split(":");
  const revision = Number(revisionText);
  if (!Number.isSafeInteger(revision) || !hash) return undefined;
  if (hash === "-") return { revision, hash: null };
  return { revision, hash, createdAt: Number(created), updatedAt: Number(updated) };
}
