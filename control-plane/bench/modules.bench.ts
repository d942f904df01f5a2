// Module benchmark (`npm run bench`): measures, on this machine, what an execution pays to get
// its code for an organization with 10,000 global modules and 1,000 overrides — resolve
// latency and throughput (cache warm and cold, store and gRPC), the effective view (unchanged
// check and full rebuild), the import map and put throughput — and prints them against the
// issue's targets. Not a test: the only thing it fails on is the fingerprint's correctness.
//
// Self-contained: a fresh database `bifrost_bench_<random>` (migrated here) and a Redis key
// prefix of its own, both removed at the end. Services as for the integration tests:
// BIFROST_TEST_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/postgres) and
// BIFROST_TEST_REDIS_URL (redis://127.0.0.1:6379); start them with `npm run services`.

import { cpus } from "node:os";
import { GetEffectiveViewResponse, type Scope as ProtoScope } from "@bifrost/proto";
import { systemActor } from "../src/audit/audit-log.js";
import { provenanceToProto } from "../src/grpc/provenance.js";
import { globalScope, organizationScope } from "../src/scope.js";
import { type BenchControlPlane, startBenchControlPlane } from "./bench-control-plane.js";
import {
  count,
  latencyRow,
  line,
  loadAverage,
  ms,
  printTargets,
  rateRow,
  section,
} from "./bench-report.js";
import {
  elapsedMs,
  type LatencySummary,
  measureThroughput,
  runPool,
  sampleLatency,
  seededRandom,
  summarize,
  timedPool,
} from "./bench-stats.js";
import { checkFingerprints } from "./fingerprint-checks.js";
import { moduleContent, modulePath } from "./module-corpus.js";

const globalModules = 10_000;
const overrides = 1_000;
/** The small deployment the unchanged check is compared with: 1,000 globals, 100 overrides. */
const smallGlobals = 1_000;
const smallOverrides = 100;
/** Org A overrides every 10th global path; org B every 10th shifted by 5 (disjoint from A). */
const overridePathA = (k: number) => modulePath(10 * k);
const overridePathB = (k: number) => modulePath(10 * k + 5);

const samples = 2_000;
const rebuildSamples = 200;
const throughputCalls = 10_000;
const resolveConcurrency = 32;
const putConcurrency = 16;

const targets = { resolveP50Ms: 1, unchangedRatio: 1.5, rebuildP50Ms: 20 };

const globalProto: ProtoScope = { kind: { $case: "global", value: true } };
const orgProto = (id: string): ProtoScope => ({ kind: { $case: "organizationId", value: id } });
const actor = systemActor;

interface Orgs {
  a: string;
  b: string;
}

interface Baselines {
  postgres: LatencySummary;
  redis: LatencySummary;
  authenticate: LatencySummary;
}

/** One round trip of each kind, so the figures below read as multiples of them. */
async function measureBaselines(cp: BenchControlPlane, orgs: Orgs): Promise<Baselines> {
  section("Baselines (round trips in this run)");
  const options = { warmup: 200 };
  const postgres = latencyRow(
    "PostgreSQL `select 1`",
    summarize(await sampleLatency(samples, () => cp.sql`select 1`, options)),
  );
  const redis = latencyRow(
    "Redis GET (missing key)",
    summarize(await sampleLatency(samples, () => cp.redis.get(`${cp.redisPrefix}none`), options)),
  );
  const refused = () =>
    cp.anonymous.modules
      .resolveModule({ organizationId: orgs.a, path: modulePath(0) })
      .catch(() => undefined);
  latencyRow(
    "gRPC call refused before any I/O (no credentials)",
    summarize(await sampleLatency(samples, refused, options)),
  );
  const authenticate = latencyRow(
    "API key authentication (1 Postgres query per RPC)",
    summarize(
      await sampleLatency(
        samples,
        () => cp.stores.identity.authenticate(`Bearer ${cp.adminKey}`),
        options,
      ),
    ),
  );
  return { postgres, redis, authenticate };
}

const putGlobal = (cp: BenchControlPlane, i: number) =>
  cp.admin.modules.putModule({
    scope: globalProto,
    path: modulePath(i),
    content: moduleContent(i, "global"),
  });
const putOverrideA = (cp: BenchControlPlane, orgs: Orgs, k: number) =>
  cp.admin.modules.putModule({
    scope: orgProto(orgs.a),
    path: overridePathA(k),
    content: moduleContent(10 * k, "org-a"),
  });

/** Seeds the small deployment through gRPC, one put at a time, and measures it. */
async function seedSmall(cp: BenchControlPlane, orgs: Orgs): Promise<void> {
  section("Put module (each put: one transaction with the view sums and the audit row)");
  const global = latencyRow(
    `gRPC PutModule global, sequential (${count(smallGlobals)})`,
    summarize(await sampleLatency(smallGlobals, (i) => putGlobal(cp, i))),
  );
  rateRow("  → throughput", 1000 / global.mean);
  latencyRow(
    `gRPC PutModule org override, sequential (${smallOverrides})`,
    summarize(await sampleLatency(smallOverrides, (k) => putOverrideA(cp, orgs, k))),
  );
}

/** Seeds the rest (10,000 globals, 1,000 overrides in each org) with puts in flight. */
async function seedRest(cp: BenchControlPlane, orgs: Orgs): Promise<void> {
  const modules = cp.stores.modules;
  const global = await timedPool(smallGlobals, putConcurrency, (j) =>
    putGlobal(cp, smallGlobals + j),
  );
  latencyRow(
    `gRPC PutModule global, ${putConcurrency} in flight (${count(smallGlobals)})`,
    global.summary,
  );
  rateRow("  → throughput", global.opsPerSecond, "global writes serialize on the global sum row");

  const from = 2 * smallGlobals;
  const seedStart = process.hrtime.bigint();
  await runPool(globalModules - from, putConcurrency, (j) =>
    modules.put(actor, globalScope, modulePath(from + j), moduleContent(from + j, "global")),
  );
  rateRow(
    `store put global, ${putConcurrency} in flight (${count(globalModules - from)}, seeding)`,
    (globalModules - from) / (elapsedMs(seedStart) / 1000),
  );

  const org = await timedPool(overrides - smallOverrides, putConcurrency, (j) =>
    putOverrideA(cp, orgs, smallOverrides + j),
  );
  latencyRow(
    `gRPC PutModule org override, ${putConcurrency} in flight (${count(overrides - smallOverrides)})`,
    org.summary,
  );
  rateRow("  → throughput", org.opsPerSecond, "one org's writes serialize on its sum row");

  const orgBStart = process.hrtime.bigint();
  await runPool(overrides, putConcurrency, (k) =>
    modules.put(
      actor,
      organizationScope(orgs.b),
      overridePathB(k),
      moduleContent(10 * k + 5, "org-b"),
    ),
  );
  rateRow(
    `store put org B override, ${putConcurrency} in flight (${count(overrides)}, seeding)`,
    overrides / (elapsedMs(orgBStart) / 1000),
  );
  latencyRow(
    "gRPC PutModule with unchanged content (nothing written)",
    summarize(await sampleLatency(samples / 4, (i) => putGlobal(cp, i))),
  );
}

/** The unchanged check and a rebuild of org A's view, measured at the current size. */
async function measureViewAtSize(cp: BenchControlPlane, orgs: Orgs) {
  const modules = cp.stores.modules;
  const { fingerprint } = await modules.effectiveView(orgs.a);
  const unchanged = summarize(
    await sampleLatency(samples, () => modules.effectiveView(orgs.a, fingerprint), {
      warmup: 200,
    }),
  );
  const rebuild = summarize(
    await sampleLatency(rebuildSamples, () => modules.effectiveView(orgs.a), { warmup: 20 }),
  );
  return { fingerprint, unchanged, rebuild };
}

async function measureResolve(cp: BenchControlPlane, orgs: Orgs, baselines: Baselines) {
  const modules = cp.stores.modules;
  const entries = (await modules.effectiveView(orgs.a)).entries ?? [];
  const winnerHash = new Map(entries.map((e) => [e.path, e.contentHash]));
  const random = seededRandom(42);
  const sampled = Array.from(
    { length: throughputCalls },
    () => entries[Math.floor(random() * entries.length)]?.path as string,
  );
  const pathAt = (i: number) => sampled[i % sampled.length] as string;
  const evict = (path: string) => [
    `${cp.redisPrefix}module:${orgs.a}:${path}`,
    `${cp.redisPrefix}module:global:${path}`,
    `${cp.redisPrefix}blob:${winnerHash.get(path)}`,
  ];

  const flushed = await cp.flushCache();
  const warmStart = process.hrtime.bigint();
  const warmed = await modules.warmCache();
  console.log(
    `\nCache: flushed ${count(flushed)} keys; warmCache() loaded ${count(warmed)} modules in ${ms(elapsedMs(warmStart)).trim()} ms`,
  );

  section(
    `Resolve (org A: ${count(entries.length)} effective paths, ${count(overrides)} overridden; random paths)`,
  );
  const store = (i: number) => modules.resolve(orgs.a, pathAt(i));
  const grpc = (i: number) =>
    cp.admin.modules.resolveModule({ organizationId: orgs.a, path: pathAt(i) });
  // warmCache() loads pointers for rows that exist; org A's "no module here" pointer for a
  // path it does not override is cached by its first resolve of that path.
  latencyRow(
    "store resolve, first call per path after warmCache()",
    summarize(await sampleLatency(samples, store)),
    "org's empty pointer not cached yet",
  );
  await runPool(throughputCalls, resolveConcurrency, store);
  const warm = latencyRow(
    "store resolve, cache warm",
    summarize(await sampleLatency(samples, store, { warmup: 500 })),
  );
  rateRow(
    `  → ${resolveConcurrency} in flight`,
    await measureThroughput(throughputCalls, resolveConcurrency, store),
  );
  const warmGrpc = latencyRow(
    "gRPC ResolveModule, cache warm",
    summarize(await sampleLatency(samples, grpc, { warmup: 500 })),
  );
  rateRow(
    `  → ${resolveConcurrency} in flight`,
    await measureThroughput(throughputCalls, resolveConcurrency, grpc),
  );
  const orgB = (i: number) => modules.resolve(orgs.b, pathAt(i));
  await runPool(throughputCalls, resolveConcurrency, orgB);
  latencyRow(
    "store resolve for org B, cache warm (isolation check)",
    summarize(await sampleLatency(samples, orgB, { warmup: 200 })),
  );

  // Cold: the path's pointers and blob are evicted before each call (outside the timing), so
  // every call reads Postgres and fills the cache.
  const prepare = (i: number) => cp.redis.del(...evict(pathAt(i)));
  const cold = latencyRow(
    "store resolve, cache cold (Postgres + cache fill)",
    summarize(await sampleLatency(samples, store, { warmup: 100, prepare })),
  );
  await cp.redis.del(...sampled.flatMap(evict));
  rateRow(
    `  → ${resolveConcurrency} in flight`,
    await measureThroughput(throughputCalls, resolveConcurrency, store),
    "distinct paths evicted first; repeats hit",
  );
  latencyRow(
    "gRPC ResolveModule, cache cold",
    summarize(await sampleLatency(samples, grpc, { warmup: 100, prepare })),
  );
  line(
    `warm store resolve p50 = ${(warm.p50 / baselines.redis.p50).toFixed(1)} × Redis GET (MGET pointers + GET blob); cold = ${(cold.p50 / baselines.redis.p50).toFixed(1)} × Redis GET or ${(cold.p50 / baselines.postgres.p50).toFixed(1)} × select 1`,
  );
  line(
    `gRPC adds ${ms(warmGrpc.p50 - warm.p50).trim()} ms at p50 over the store, of which authentication is ${ms(baselines.authenticate.p50).trim()} ms`,
  );
  return { warm, cold };
}

type AtSize = Awaited<ReturnType<typeof measureViewAtSize>>;

async function measureView(cp: BenchControlPlane, orgs: Orgs, small: AtSize, baselines: Baselines) {
  const modules = cp.stores.modules;
  const full = await measureViewAtSize(cp, orgs);
  const smallRows = count(smallGlobals + smallOverrides);
  const fullRows = count(globalModules + overrides);
  section(`Effective view (org A: ${fullRows} rows → ${count(globalModules)} entries)`);
  latencyRow(`store unchanged check, ${smallRows} rows (small deployment)`, small.unchanged);
  latencyRow(`store unchanged check, ${fullRows} rows`, full.unchanged);
  const ratio = full.unchanged.p50 / small.unchanged.p50;
  line(
    `  → ratio ${fullRows} / ${smallRows} rows at p50: ${ratio.toFixed(2)} (mean ${(full.unchanged.mean / small.unchanged.mean).toFixed(2)})`,
  );
  latencyRow(
    "gRPC GetEffectiveView, known fingerprint (unchanged)",
    summarize(
      await sampleLatency(
        samples,
        () =>
          cp.admin.modules.getEffectiveView({
            organizationId: orgs.a,
            knownFingerprint: full.fingerprint,
          }),
        { warmup: 200 },
      ),
    ),
  );
  latencyRow(`store full rebuild, ${smallRows} rows (small deployment)`, small.rebuild);
  latencyRow(`store full rebuild, ${fullRows} rows`, full.rebuild);
  const rebuildGrpc = latencyRow(
    "gRPC GetEffectiveView, full (decoded by the client)",
    summarize(
      await sampleLatency(
        rebuildSamples,
        () => cp.admin.modules.getEffectiveView({ organizationId: orgs.a, knownFingerprint: "" }),
        { warmup: 20 },
      ),
    ),
  );
  latencyRow(
    "gRPC GetImportMap",
    summarize(
      await sampleLatency(
        rebuildSamples,
        () => cp.admin.modules.getImportMap({ organizationId: orgs.a }),
        { warmup: 20 },
      ),
    ),
  );
  latencyRow(
    "store full rebuild for org B (isolation check)",
    summarize(
      await sampleLatency(rebuildSamples / 2, () => modules.effectiveView(orgs.b), { warmup: 10 }),
    ),
  );
  // A global write before each sample (untimed), so the rebuild reads the global rows too.
  const touched = globalModules - 1;
  const afterGlobalWrite = latencyRow(
    "store full rebuild after a global write (global rows read)",
    summarize(
      await sampleLatency(rebuildSamples / 2, () => modules.effectiveView(orgs.a), {
        prepare: (i) =>
          modules.put(actor, globalScope, modulePath(touched), moduleContent(i, "touched")),
      }),
    ),
  );
  await modules.put(actor, globalScope, modulePath(touched), moduleContent(touched, "global"));
  await profileView(cp, orgs, {
    sums: full.unchanged,
    rebuild: full.rebuild,
    afterGlobalWrite,
    rebuildGrpc,
    authenticate: baselines.authenticate,
  });
  return { ratio, unchanged: full.unchanged, rebuild: full.rebuild, afterGlobalWrite, rebuildGrpc };
}

/** Splits a full view's time into its reads, the wire encoding and the rest. */
async function profileView(
  cp: BenchControlPlane,
  orgs: Orgs,
  measured: Record<
    "sums" | "rebuild" | "afterGlobalWrite" | "rebuildGrpc" | "authenticate",
    LatencySummary
  >,
): Promise<void> {
  const { sql } = cp;
  section("Where a full view's time goes (org A)");
  latencyRow("view sums (BEGIN repeatable read; SELECT; COMMIT)", measured.sums);
  const own = latencyRow(
    `SELECT the org's own rows (${count(overrides)})`,
    summarize(
      await sampleLatency(
        rebuildSamples,
        () =>
          sql`select path as key, content_hash from modules where organization_id = ${orgs.a} order by path`,
      ),
    ),
  );
  const global = latencyRow(
    `SELECT the global rows (${count(globalModules)}); only after a global write`,
    summarize(
      await sampleLatency(
        rebuildSamples / 2,
        () =>
          sql`select path as key, content_hash from modules where organization_id is null order by path`,
      ),
    ),
  );
  const view = await cp.stores.modules.effectiveView(orgs.a);
  const message: GetEffectiveViewResponse = {
    fingerprint: view.fingerprint,
    unchanged: false,
    entries: (view.entries ?? []).map((e) => ({
      path: e.path,
      contentHash: e.contentHash,
      provenance: provenanceToProto(e.provenance),
    })),
  };
  const encoded = GetEffectiveViewResponse.encode(message).finish();
  const encode = latencyRow(
    `protobuf encode of the response (${count(encoded.length)} bytes)`,
    summarize(
      await sampleLatency(rebuildSamples, async () =>
        GetEffectiveViewResponse.encode(message).finish(),
      ),
    ),
  );
  const decode = latencyRow(
    "protobuf decode of the response (client side)",
    summarize(
      await sampleLatency(rebuildSamples, async () => GetEffectiveViewResponse.decode(encoded)),
    ),
  );
  const p50 = (s: LatencySummary) => ms(s.p50).trim();
  line(
    `store rebuild ${p50(measured.rebuild)} ≈ sums ${p50(measured.sums)} + own rows ${p50(own)} + merge in JS; after a global write also global rows ${p50(global)} (→ ${p50(measured.afterGlobalWrite)})`,
  );
  line(
    `gRPC view ${p50(measured.rebuildGrpc)} ≈ store ${p50(measured.rebuild)} + auth ${p50(measured.authenticate)} + encode ${p50(encode)} + decode ${p50(decode)} + HTTP/2 transfer`,
  );
}

async function run(cp: BenchControlPlane): Promise<boolean> {
  const [version] = await cp.sql<{ v: string }[]>`select current_setting('server_version') as v`;
  const redisVersion = /redis_version:(\S+)/.exec(await cp.redis.info("server"))?.[1];
  const cpu = cpus();
  line(
    `node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim()}, PostgreSQL ${version?.v}, Redis ${redisVersion}`,
  );
  line(`load average at start: ${loadAverage()} (other work on this machine skews the figures)`);
  line("client and server share this process: gRPC figures include both sides' CPU");
  const orgs: Orgs = {
    a: (await cp.stores.organizations.create(actor, "bench-a")).id,
    b: (await cp.stores.organizations.create(actor, "bench-b")).id,
  };
  const baselines = await measureBaselines(cp, orgs);
  await seedSmall(cp, orgs);
  const small = await measureViewAtSize(cp, orgs);
  await seedRest(cp, orgs);
  const resolve = await measureResolve(cp, orgs, baselines);
  const view = await measureView(cp, orgs, small, baselines);
  const correct = await checkFingerprints(cp.stores.modules, orgs.a, orgs.b);

  const under = (summary: LatencySummary, limit: number) => ({
    target: `< ${limit} ms`,
    measured: `${ms(summary.p50).trim()} ms`,
    met: summary.p50 < limit,
  });
  printTargets([
    {
      name: "resolve p50, server-side (store), cache warm",
      ...under(resolve.warm, targets.resolveP50Ms),
    },
    {
      name: "resolve p50, server-side (store), cache cold",
      ...under(resolve.cold, targets.resolveP50Ms),
    },
    {
      name: "unchanged view check p50, 11,000 ÷ 1,100 rows",
      target: `≈ 1 (< ${targets.unchangedRatio})`,
      measured: `${view.ratio.toFixed(2)} (${ms(view.unchanged.p50).trim()} ms)`,
      met: view.ratio < targets.unchangedRatio,
    },
    { name: "full warm rebuild p50, store", ...under(view.rebuild, targets.rebuildP50Ms) },
    {
      name: "full rebuild p50, store, right after a global write",
      ...under(view.afterGlobalWrite, targets.rebuildP50Ms),
    },
    {
      name: "full warm rebuild p50, gRPC end to end",
      ...under(view.rebuildGrpc, targets.rebuildP50Ms),
    },
    {
      name: "fingerprint correctness checks",
      target: "all pass",
      measured: correct ? "all pass" : "FAILED",
      met: correct,
    },
  ]);
  return correct;
}

const started = process.hrtime.bigint();
const cp = await startBenchControlPlane({
  postgresUrl:
    process.env.BIFROST_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  redisUrl: process.env.BIFROST_TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
});
let correct = false;
try {
  console.log("Bifrost module benchmark");
  correct = await run(cp);
} finally {
  await cp.close();
}
console.log(
  `\ntotal ${(elapsedMs(started) / 1000).toFixed(1)} s; load average at end: ${loadAverage()}; database and Redis keys removed`,
);
if (!correct) process.exitCode = 1;
