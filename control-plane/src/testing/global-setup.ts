import { Redis } from "ioredis";
import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { migrate } from "../db/migrate.js";

/** The migrated database every integration test file clones (CREATE DATABASE … TEMPLATE). */
export const templateDatabase = "bifrost_test_template";

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string;
    redisUrl: string;
    templateDatabase: string;
  }
}

const postgresUrl =
  process.env.BIFROST_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const redisUrl = process.env.BIFROST_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

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

  // Drop what earlier runs left behind, then build a fresh template at the current schema.
  const stale = await admin<{ datname: string }[]>`
    select datname from pg_database where datname like 'bifrost_test_%'`;
  for (const { datname } of stale) {
    await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${datname}`;
    await admin`drop database if exists ${admin(datname)}`;
  }
  const templateUrl = new URL(postgresUrl);
  templateUrl.pathname = `/${templateDatabase}`;
  await migrate(templateUrl.toString());
  await admin.end();

  project.provide("postgresUrl", postgresUrl);
  project.provide("redisUrl", redisUrl);
  project.provide("templateDatabase", templateDatabase);
  return async () => {};
}
