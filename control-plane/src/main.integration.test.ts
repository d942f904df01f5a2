import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import postgres from "postgres";
import { afterAll, describe, expect, inject, test } from "vitest";
import { connectClients } from "./testing/grpc-clients.js";
import { checkHealth } from "./testing/health-client.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const database = `${inject("testDatabasePrefix")}main_${randomBytes(4).toString("hex")}`;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startMain(env: Record<string, string>): Started {
  const child = spawn(
    process.execPath,
    ["--conditions=development", "--import", "tsx", "control-plane/src/main.ts"],
    {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? "", BIFROST_LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  child.stdout?.on("data", (chunk) => {
    out += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    err += chunk;
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor(condition: () => boolean, what: string, started: Started): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `timed out waiting for ${what}\nstdout:\n${started.stdout()}\nstderr:\n${started.stderr()}`,
  );
}

const databaseUrl = () => {
  const url = new URL(inject("postgresUrl"));
  url.pathname = `/${database}`;
  return url.toString();
};

const baseEnv = () => ({
  // A port of the OS's choosing: other test files start control planes at the same time.
  BIFROST_METRICS_LISTEN: "127.0.0.1:0",
  BIFROST_DATABASE_URL: databaseUrl(),
  BIFROST_REDIS_URL: inject("redisUrl"),
  BIFROST_REDIS_KEY_PREFIX: `bifrost-test:${database}:`,
  BIFROST_SECRET_KEYS: `k1:${Buffer.alloc(32, 7).toString("base64")}`,
});

afterAll(async () => {
  const admin = postgres(inject("postgresUrl"), { max: 1, onnotice: () => {} });
  await admin`drop database if exists ${admin(database)} with (force)`;
  await admin.end();
});

describe("the control plane process", () => {
  test("first start migrates, prints the admin key once, serves health and the API, and drains on SIGTERM", async () => {
    const port = await freePort();
    const first = startMain({ ...baseEnv(), BIFROST_GRPC_LISTEN: `127.0.0.1:${port}` });
    await waitFor(
      () => first.stdout().includes("grpc server listening"),
      "the server to listen",
      first,
    );
    const key = /bfk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/.exec(first.stderr())?.[0];
    expect(key, first.stderr()).toBeDefined();
    expect(first.stdout()).not.toContain(key as string);

    const pool = connectClients(`127.0.0.1:${port}`);
    const me = await pool.as(key).identity.getCurrentPrincipal({});
    expect(me.user?.platformAdmin).toBe(true);
    expect(await checkHealth(`127.0.0.1:${port}`, credentials.createInsecure())).toBe("SERVING");
    expect(
      await checkHealth(
        `127.0.0.1:${port}`,
        credentials.createInsecure(),
        "bifrost.v1.ModuleService",
      ),
    ).toBe("SERVING");
    pool.close();
    // Its metrics count the calls above, served where its log says.
    const metricsAt = /"address":"([^"]+)","msg":"metrics served at \/metrics"/.exec(
      first.stdout(),
    )?.[1];
    expect(metricsAt, first.stdout()).toBeDefined();
    const metrics = await (await fetch(`http://${metricsAt}/metrics`)).text();
    expect(metrics).toContain(
      'bifrost_grpc_server_handled_total{method="GetCurrentPrincipal",code="OK"} 1',
    );

    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    expect(first.stdout()).toContain('"msg":"stopped"');

    const second = startMain({ ...baseEnv(), BIFROST_GRPC_LISTEN: `127.0.0.1:${port}` });
    await waitFor(
      () => second.stdout().includes("grpc server listening"),
      "the second start",
      second,
    );
    expect(second.stderr()).not.toMatch(/bfk_/);
    const again = connectClients(`127.0.0.1:${port}`);
    expect((await again.as(key).identity.getCurrentPrincipal({})).user?.email).toBe(
      "admin@bifrost.local",
    );
    again.close();
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });

  test("bad configuration exits at once, listing every bad variable", async () => {
    const started = startMain({
      BIFROST_GRPC_LISTEN: "not an address",
      BIFROST_MODULE_MAX_BYTES: "-5",
    });
    expect(await started.exited).toBe(2);
    expect(started.stderr()).toContain("BIFROST_SECRET_KEYS");
    expect(started.stderr()).toContain("BIFROST_GRPC_LISTEN");
    expect(started.stderr()).toContain("BIFROST_MODULE_MAX_BYTES");
  });

  test("an unreachable database fails the start with its URL named and the password masked", async () => {
    const started = startMain({
      ...baseEnv(),
      BIFROST_DATABASE_URL: "postgres://bifrost:hunter2@127.0.0.1:1/bifrost",
      BIFROST_GRPC_LISTEN: `127.0.0.1:${await freePort()}`,
    });
    expect(await started.exited).toBe(1);
    expect(started.stdout()).toContain(
      "cannot reach PostgreSQL at postgres://bifrost:***@127.0.0.1:1/bifrost",
    );
    expect(started.stdout()).not.toContain("hunter2");
  });

  test("an unreachable Redis fails the start with its URL named", async () => {
    const started = startMain({
      ...baseEnv(),
      BIFROST_REDIS_URL: "redis://127.0.0.1:1/0",
      BIFROST_GRPC_LISTEN: `127.0.0.1:${await freePort()}`,
    });
    expect(await started.exited).toBe(1);
    expect(started.stdout()).toContain("cannot reach Redis at redis://127.0.0.1:1/0");
  });
});
