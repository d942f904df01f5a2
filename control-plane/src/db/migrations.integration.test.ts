import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import postgres from "postgres";
import { afterAll, expect, inject, test } from "vitest";
import { createLogger } from "../log.js";
import { createModuleCache } from "../modules/module-cache.js";
import { createModuleStore } from "../modules/module-store.js";
import { migrate } from "./migrate.js";

const name = `${inject("testDatabasePrefix")}migrate_${randomBytes(4).toString("hex")}`;
const url = new URL(inject("postgresUrl"));
url.pathname = `/${name}`;
const databaseUrl = url.toString();

afterAll(async () => {
  const admin = postgres(inject("postgresUrl"), { max: 1, onnotice: () => {} });
  await admin`drop database if exists ${admin(name)} with (force)`;
  await admin.end();
});

test("a database at the previous schema version migrates forward with its data intact", async () => {
  const applied = await migrate(databaseUrl);
  const all = applied.length;
  expect(all).toBeGreaterThanOrEqual(2);
  // Start over at the version before the latest one.
  const admin = postgres(inject("postgresUrl"), { max: 1, onnotice: () => {} });
  await admin`drop database ${admin(name)} with (force)`;
  await admin.end();
  expect(await migrate(databaseUrl, { count: all - 1 })).toEqual(applied.slice(0, -1));

  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  try {
    const [org] = await sql`insert into organizations (name) values ('Before') returning id`;
    const [user] =
      await sql`insert into users (email, platform_admin) values ('old@test', true) returning id`;
    await sql`insert into memberships (organization_id, user_id, role) values (${org?.id}, ${user?.id}, 'admin')`;
    await sql`insert into audit_events (organization_id, action, target_type, target) values (${org?.id}, 'organization.create', 'organization', ${org?.id})`;
    await sql`insert into modules (organization_id, path, content, content_hash, size_bytes)
      values (${org?.id}, 'shared/old.ts', 'old', encode(sha256('old'), 'hex'), 3)`;
    // The schema as a list of its objects (tables, indexes, sequences, triggers, functions),
    // to see the step applied.
    const relations = async () =>
      (
        await sql<{ name: string }[]>`
        select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public'
        union all
        select 'trigger ' || t.tgname from pg_trigger t join pg_class c on c.oid = t.tgrelid
          join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and not t.tgisinternal
        union all
        select 'function ' || p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public'
        order by 1`
      ).map((r) => r.name);
    const before = await relations();

    expect(await migrate(databaseUrl)).toEqual(applied.slice(-1));
    expect((await relations()).length).toBeGreaterThan(before.length);
    expect(await sql`select name from organizations`).toEqual([{ name: "Before" }]);
    expect(await sql`select email, platform_admin from users`).toEqual([
      { email: "old@test", platform_admin: true },
    ]);
    expect((await sql`select count(*)::int as n from memberships`)[0]?.n).toBe(1);
    expect((await sql`select count(*)::int as n from audit_events`)[0]?.n).toBe(1);
    // Re-running is a no-op.
    expect(await migrate(databaseUrl)).toEqual([]);

    // The migrated database works: modules can be written and resolved for the old organization.
    const redis = new Redis(inject("redisUrl"));
    const store = createModuleStore({
      sql,
      cache: createModuleCache(redis, { prefix: `bifrost-test:${name}:`, ttlSeconds: 60 }),
      log: createLogger({ name: "test", level: "silent" }),
      maxModuleBytes: 1024,
    });
    await store.put(
      { userId: null, apiKeyId: null },
      { kind: "organization", organizationId: org?.id },
      "shared/a.ts",
      "ok",
    );
    expect((await store.resolve(org?.id, "shared/a.ts")).module.content).toBe("ok");
    expect((await store.resolve(org?.id, "shared/old.ts")).module.content).toBe("old");
    const keys = await redis.keys(`bifrost-test:${name}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  } finally {
    await sql.end();
  }
});
