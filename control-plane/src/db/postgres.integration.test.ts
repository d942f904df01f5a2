import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { connectPostgres, type Sql } from "./postgres.js";

// A database session can die under the control plane at any moment: PostgreSQL restarts, an
// operator runs pg_terminate_backend, a proxy drops the connection. postgres.js 3.4.9 then
// threw from a setImmediate, outside any promise, which would take the whole control plane
// down, and could leave the pooled connection unable to send again (porsager/postgres#1208;
// patched in patches/postgres+3.4.9.patch). Vitest fails the run on such an uncaught error.

const name = `${inject("testDatabasePrefix")}pgpool_${randomBytes(4).toString("hex")}`;
const url = new URL(inject("postgresUrl"));
url.pathname = `/${name}`;

let admin: Sql;

beforeAll(async () => {
  admin = postgres(inject("postgresUrl"), { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await admin`drop database if exists ${admin(name)} with (force)`;
  await admin.end();
});

/** Rejects when `promise` has not settled within `ms`: a poisoned connection hangs. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]);
}

describe("the control plane's PostgreSQL pool when a session dies", () => {
  for (const max of [1, 2, 10]) {
    test(`pool of ${max}: a transaction whose session is terminated fails with a catchable error, writes nothing, and the pool serves the next queries`, async () => {
      const sql = await connectPostgres(url.toString(), { max });
      try {
        await sql`create table if not exists pool_probe (id int primary key, pool int)`;
        for (let round = 0; round < 3; round++) {
          const id = max * 100 + round;
          const outcome = await within(
            5000,
            sql
              .begin(async (tx) => {
                const [session] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
                await tx`insert into pool_probe (id, pool) values (${id}, ${max})`;
                await admin`select pg_terminate_backend(${session?.pid as number})`;
                await tx`update pool_probe set pool = -1 where id = ${id}`;
              })
              .then(
                () => "committed",
                (error: { code?: string }) => error.code ?? "error without code",
              ),
            "the transaction",
          );
          expect(outcome).not.toBe("committed");
          // Give postgres.js's deferred write its turn: it used to throw here.
          await new Promise((resolve) => setImmediate(resolve));
          await new Promise((resolve) => setTimeout(resolve, 20));
          const rows = await within(
            5000,
            sql`select id from pool_probe where id = ${id}`,
            "a query after the terminated session",
          );
          expect(rows).toHaveLength(0);
          // Every connection of the pool still sends: as many queries at once as it holds.
          const answers = await within(
            5000,
            Promise.all(
              Array.from(
                { length: max + 1 },
                (_, i) => sql<{ n: number }[]>`select ${i}::int as n`,
              ),
            ),
            "queries on every connection",
          );
          expect(answers.map(([row]) => row?.n)).toEqual(
            Array.from({ length: max + 1 }, (_, i) => i),
          );
        }
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
  }
});
