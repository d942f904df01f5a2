// Git sync benchmark (`npm run bench:git`): on this machine, the wall time of the initial sync
// of a 1,000-file repository and of incremental syncs of 10- and 100-file changes, and the same
// for a 10,000-file repository, through the real syncer (git fetch from a local repository,
// one PostgreSQL transaction, cache writes). The claim to check: an incremental sync's time
// grows with the change, not with the repository. Not a test; it prints figures and ratios.
//
// Self-contained like the module benchmark: a fresh database and Redis prefix, temporary
// repositories, all removed at the end (BIFROST_TEST_POSTGRES_URL, BIFROST_TEST_REDIS_URL).

import { systemActor } from "../src/audit/audit-log.js";
import { parseRepositoryUrl } from "../src/git/repository-url.js";
import { organizationScope } from "../src/scope.js";
import { createTestRepository, type TestRepository } from "../src/testing/git-fixtures.js";
import { type BenchControlPlane, startBenchControlPlane } from "./bench-control-plane.js";
import { line, loadAverage, ms, printTargets } from "./bench-report.js";
import { elapsedMs, summarize } from "./bench-stats.js";
import { moduleContent, modulePath } from "./module-corpus.js";

const rounds = 5;

interface Case {
  files: number;
  initialMs: number;
  initialWritten: number;
  /** Median wall time of an incremental sync, by files changed. */
  incrementalMs: Map<number, number>;
  noChangeMs: number;
}

async function syncOnce(cp: BenchControlPlane, id: string) {
  const start = process.hrtime.bigint();
  const { sync } = await cp.gitSyncer.sync(id, "manual", systemActor);
  const took = elapsedMs(start);
  if (sync?.status !== "succeeded") throw new Error(`sync failed: ${sync?.error}`);
  return { took, written: sync.added.length + sync.updated.length + sync.deleted.length };
}

async function measureCase(
  cp: BenchControlPlane,
  files: number,
  repositories: TestRepository[],
): Promise<Case> {
  const repo = await createTestRepository();
  repositories.push(repo);
  const tree: Record<string, string> = {};
  for (let i = 0; i < files; i++) tree[modulePath(i)] = moduleContent(i, "v0");
  await repo.commit(tree);
  const { organization } = await cp.admin.organizations.createOrganization({
    name: `git bench ${files}`,
  });
  const { binding } = await cp.stores.gitBindings.create(systemActor, {
    scope: organizationScope(organization?.id as string),
    repository: parseRepositoryUrl(repo.url, {
      allowedSchemes: ["file"],
      allowPrivateHosts: false,
    }),
    branch: "main",
    subfolder: "",
    credential: undefined,
    pollIntervalSeconds: 0,
    mayName: () => true,
  });
  const initial = await syncOnce(cp, binding.id);
  const incrementalMs = new Map<number, number>();
  let version = 0;
  for (const changed of [10, 100]) {
    const times: number[] = [];
    for (let round = 0; round < rounds; round++) {
      version++;
      const change: Record<string, string> = {};
      for (let k = 0; k < changed; k++) {
        const i = (round * 997 + k * 31) % files;
        change[modulePath(i)] = moduleContent(i, `v${version}`);
      }
      await repo.commit(change);
      const { took, written } = await syncOnce(cp, binding.id);
      if (written !== changed) throw new Error(`expected ${changed} writes, saw ${written}`);
      times.push(took);
    }
    incrementalMs.set(changed, summarize(times).p50);
  }
  const noChange: number[] = [];
  for (let round = 0; round < rounds; round++) noChange.push((await syncOnce(cp, binding.id)).took);
  return {
    files,
    initialMs: initial.took,
    initialWritten: initial.written,
    incrementalMs,
    noChangeMs: summarize(noChange).p50,
  };
}

const started = process.hrtime.bigint();
const cp = await startBenchControlPlane({
  postgresUrl:
    process.env.BIFROST_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  redisUrl: process.env.BIFROST_TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
});
const repositories: TestRepository[] = [];
try {
  console.log("Bifrost git sync benchmark");
  line(`load average before: ${loadAverage()}`);
  const small = await measureCase(cp, 1_000, repositories);
  const large = await measureCase(cp, 10_000, repositories);
  for (const c of [small, large]) {
    console.log(`\n${c.files.toLocaleString("en-US")}-file repository (1–2 KB TypeScript files)`);
    line(
      `initial sync            ${ms(c.initialMs).padStart(10)}   ${c.initialWritten} modules written`,
    );
    for (const [changed, took] of c.incrementalMs) {
      line(
        `incremental, ${String(changed).padStart(3)} files  ${ms(took).padStart(10)}   ${changed} modules written (p50 of ${rounds})`,
      );
    }
    line(
      `no new files            ${ms(c.noChangeMs).padStart(10)}   0 modules written (p50 of ${rounds})`,
    );
  }
  const small10 = small.incrementalMs.get(10) ?? 0;
  const large10 = large.incrementalMs.get(10) ?? 0;
  const small100 = small.incrementalMs.get(100) ?? 0;
  console.log("\nRatios");
  line(`10-file change, 10,000-file repo / 1,000-file repo: ${(large10 / small10).toFixed(2)}×`);
  line(
    `10-file change / initial sync, 1,000-file repo:     ${(small10 / small.initialMs).toFixed(3)}`,
  );
  line(`100-file change / 10-file change, 1,000-file repo:  ${(small100 / small10).toFixed(2)}×`);
  printTargets([
    {
      name: "incremental 10-file sync costs a fraction of the initial sync",
      target: "< 0.25×",
      measured: `${(small10 / small.initialMs).toFixed(3)}×`,
      met: small10 / small.initialMs < 0.25,
    },
    {
      name: "10-file sync in a 10× larger repository",
      target: "< 2×",
      measured: `${(large10 / small10).toFixed(2)}×`,
      met: large10 / small10 < 2,
    },
  ]);
  line(`total ${ms(elapsedMs(started)).trim()} ms, load average after: ${loadAverage()}`);
} finally {
  await cp.close();
  for (const repository of repositories) await repository.remove();
}
