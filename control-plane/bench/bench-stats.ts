/** Latency figures of one measured operation, in milliseconds. */
export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

/** Nearest-rank percentile of ascending-sorted values (q in 0..1). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** p50, p99, mean and max of latencies in milliseconds. */
export function summarize(latenciesMs: readonly number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    samples: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    mean: total / Math.max(1, sorted.length),
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** Milliseconds elapsed since `start` (a process.hrtime.bigint() reading). */
export function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/**
 * Runs `op` `warmup` times unmeasured, then `count` times one after another, timing each call
 * alone. `prepare` runs before each measured call, outside the timing (to evict a cache
 * entry, say). Returns the latencies in milliseconds.
 */
export async function sampleLatency(
  count: number,
  op: (i: number) => Promise<unknown>,
  options: { warmup?: number; prepare?: (i: number) => Promise<unknown> } = {},
): Promise<number[]> {
  for (let i = 0; i < (options.warmup ?? 0); i++) await op(i);
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    if (options.prepare) await options.prepare(i);
    const start = process.hrtime.bigint();
    await op(i);
    latencies.push(elapsedMs(start));
  }
  return latencies;
}

/** Runs `op` for 0..count-1 with at most `concurrency` calls in flight. */
export async function runPool(
  count: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await op(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** Each call's latency and the overall rate of `count` calls with `concurrency` in flight. */
export async function timedPool(
  count: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ summary: LatencySummary; opsPerSecond: number }> {
  const latencies: number[] = [];
  const start = process.hrtime.bigint();
  await runPool(count, concurrency, async (i) => {
    const callStart = process.hrtime.bigint();
    await op(i);
    latencies.push(elapsedMs(callStart));
  });
  return { summary: summarize(latencies), opsPerSecond: count / (elapsedMs(start) / 1000) };
}

/** Calls per second of `count` calls of `op` with `concurrency` in flight. */
export async function measureThroughput(
  count: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  const start = process.hrtime.bigint();
  await runPool(count, concurrency, op);
  return count / (elapsedMs(start) / 1000);
}

/** A deterministic pseudo-random generator (mulberry32), so every run samples the same paths. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
