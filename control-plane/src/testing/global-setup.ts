import { connect } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { migrate } from "../db/migrate.js";

/**
 * Databases of one test run are named `bifrost_test_<run>_…`, where <run> starts with the
 * run's start time in seconds, so parallel runs (two developers, or CI beside a developer)
 * never drop each other's databases, and leftovers of crashed runs can be recognised by age.
 */
const runId = `${Math.floor(Date.now() / 1000)}_${Math.random().toString(16).slice(2, 8)}`;
const staleAfterSeconds = 3 * 3600;

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string;
    redisUrl: string;
    templateDatabase: string;
    natsUrl: string;
    /** Prefix for every database this run creates. */
    testDatabasePrefix: string;
  }
}

const postgresUrl =
  process.env.BIFROST_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const redisUrl = process.env.BIFROST_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const natsUrl = process.env.BIFROST_TEST_NATS_URL ?? "nats://127.0.0.1:4222";

/**
 * Runs once per test run: checks that PostgreSQL and Redis answer (failing loudly with how to
 * start them), rebuilds the template database at the current schema, and hands the URLs to
 * the test files.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const admin = postgres(postgresUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    await admin`select 1`;
  } catch (error) {
    throw new Error(
      `integration tests need PostgreSQL at ${postgresUrl} (${(error as Error).message}); start it with: npm run services`,
    );
  }
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(
      `integration tests need Redis at ${redisUrl} (${(error as Error).message}); start it with: npm run services`,
    );
  } finally {
    redis.disconnect();
  }

  try {
    const nc = await connect({ servers: natsUrl, timeout: 3000 });
    await nc.close();
  } catch (error) {
    throw new Error(
      `integration tests need NATS with JetStream at ${natsUrl} (${(error as Error).message}); start it with: npm run services`,
    );
  }

  // Drop what crashed runs left behind: only databases of runs that started long ago and
  // that nobody is connected to. Never touch a database another live run may be using.
  const prefix = `bifrost_test_${runId}_`;
  const templateDatabase = `${prefix}template`;
  const cutoff = Math.floor(Date.now() / 1000) - staleAfterSeconds;
  const stale = await admin<{ datname: string }[]>`
    select datname from pg_database d
    where datname ~ '^bifrost_test_[0-9]+_'
      and split_part(datname, '_', 3)::bigint < ${cutoff}
      and not exists (select 1 from pg_stat_activity a where a.datname = d.datname)`;
  for (const { datname } of stale) await admin`drop database if exists ${admin(datname)}`;
  const templateUrl = new URL(postgresUrl);
  templateUrl.pathname = `/${templateDatabase}`;
  await migrate(templateUrl.toString());
  await admin.end();

  project.provide("postgresUrl", postgresUrl);
  project.provide("redisUrl", redisUrl);
  project.provide("natsUrl", natsUrl);
  project.provide("templateDatabase", templateDatabase);
  project.provide("testDatabasePrefix", prefix);
  return async () => {
    // This run's databases: the template and any a crashed test file did not drop.
    const cleanup = postgres(postgresUrl, { max: 1, onnotice: () => {} });
    const mine = await cleanup<{ datname: string }[]>`
      select datname from pg_database where starts_with(datname, ${prefix})`;
    for (const { datname } of mine)
      await cleanup`drop database if exists ${cleanup(datname)} with (force)`;
    await cleanup.end();
  };
}
