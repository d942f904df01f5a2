import { describe, expect, test } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

const keyA = Buffer.alloc(32, 1).toString("base64");
const keyB = Buffer.alloc(32, 2).toString("base64");
const minimal = { BIFROST_SECRET_KEYS: `k1:${keyA}` };

/** The ConfigError loadConfig throws for env. */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

/** The variable names a ConfigError lists, in order. */
const variables = (error: ConfigError) => error.problems.map((p) => p.split(":")[0]);

describe("loadConfig", () => {
  test("a minimal environment with only the secret keys gives safe defaults", () => {
    const config = loadConfig(minimal);
    expect(config).toMatchObject({
      databaseUrl: "postgres://postgres@127.0.0.1:5432/bifrost",
      redisUrl: "redis://127.0.0.1:6379/0",
      redisKeyPrefix: "bifrost:",
      grpcListen: "127.0.0.1:50051",
      logLevel: "info",
      bootstrapAdminKey: undefined,
      bootstrapAdminEmail: "admin@bifrost.local",
      moduleMaxBytes: 1024 * 1024,
      moduleCacheTtlSeconds: 24 * 3600,
      shutdownGraceMs: 10_000,
    });
    expect(config.secretKeyring.activeKeyId).toBe("k1");
    expect(config.secretKeyring.keys.get("k1")?.equals(Buffer.alloc(32, 1))).toBe(true);
  });

  test("reads every variable it is given", () => {
    const config = loadConfig({
      BIFROST_DATABASE_URL: "postgres://u:p@db:5432/x",
      BIFROST_REDIS_URL: "redis://cache:6379/2",
      BIFROST_REDIS_KEY_PREFIX: "b2:",
      BIFROST_GRPC_LISTEN: "[::1]:6000",
      BIFROST_LOG_LEVEL: "debug",
      BIFROST_SECRET_KEYS: `k1:${keyA},k2:${keyB}`,
      BIFROST_SECRET_ACTIVE_KEY_ID: "k2",
      BIFROST_BOOTSTRAP_ADMIN_KEY: `bfk_0123456789abcdef_${"A".repeat(43)}`,
      BIFROST_BOOTSTRAP_ADMIN_EMAIL: "root@example.test",
      BIFROST_MODULE_MAX_BYTES: "2048",
      BIFROST_MODULE_CACHE_TTL_SECONDS: "60",
      BIFROST_SHUTDOWN_GRACE_MS: "0",
    });
    expect(config).toMatchObject({
      databaseUrl: "postgres://u:p@db:5432/x",
      redisUrl: "redis://cache:6379/2",
      redisKeyPrefix: "b2:",
      grpcListen: "[::1]:6000",
      logLevel: "debug",
      bootstrapAdminEmail: "root@example.test",
      moduleMaxBytes: 2048,
      moduleCacheTtlSeconds: 60,
      shutdownGraceMs: 0,
    });
    expect(config.secretKeyring.activeKeyId).toBe("k2");
  });

  test("discovery's sandbox uid is the operator's to choose, never root", () => {
    expect(loadConfig(minimal).discoverySandboxUid).toBeUndefined();
    expect(
      loadConfig({ ...minimal, BIFROST_DISCOVERY_SANDBOX_UID: "64123" }).discoverySandboxUid,
    ).toBe(64123);
    const error = configError({ ...minimal, BIFROST_DISCOVERY_SANDBOX_UID: "0" });
    expect(error.problems.join("\n")).toMatch(
      /BIFROST_DISCOVERY_SANDBOX_UID: must not be 0 \(root\) \(got "0"\)/,
    );
  });

  test("metrics are served on loopback by default, where asked, or not at all", () => {
    expect(loadConfig(minimal).metricsListen).toBe("127.0.0.1:9464");
    expect(loadConfig({ ...minimal, BIFROST_METRICS_LISTEN: "[::]:9100" }).metricsListen).toBe(
      "[::]:9100",
    );
    expect(loadConfig({ ...minimal, BIFROST_METRICS_LISTEN: "off" }).metricsListen).toBeNull();
    const error = configError({ ...minimal, BIFROST_METRICS_LISTEN: "9464" });
    expect(error.problems.join("\n")).toMatch(/BIFROST_METRICS_LISTEN: must be host:port or "off"/);
  });

  test("a bad variable's value is named, but never a value that may hold credentials", () => {
    const error = configError({
      ...minimal,
      BIFROST_GRPC_LISTEN: "localhost",
      BIFROST_DATABASE_URL: "not a url with hunter2",
      BIFROST_NATS_URL: "http://user:hunter2@nats",
    });
    const text = error.problems.join("\n");
    expect(text).toMatch(/BIFROST_GRPC_LISTEN: .*\(got "localhost"\)/);
    expect(text).toContain("BIFROST_DATABASE_URL");
    expect(text).toContain("BIFROST_NATS_URL");
    expect(text).not.toContain("hunter2");
  });

  test("ignores variables it does not know", () => {
    expect(() => loadConfig({ ...minimal, PATH: "/bin", BIFROST_UNUSED: "x" })).not.toThrow();
  });

  test("a missing BIFROST_SECRET_KEYS is a ConfigError naming it", () => {
    const error = configError({});
    expect(variables(error)).toEqual(["BIFROST_SECRET_KEYS"]);
    expect(error.message).toContain("BIFROST_SECRET_KEYS");
  });

  test("an empty BIFROST_SECRET_KEYS says what a key looks like", () => {
    expect(configError({ BIFROST_SECRET_KEYS: "" }).problems).toEqual([
      "BIFROST_SECRET_KEYS: is required (keyId:base64-of-32-bytes[,…])",
    ]);
  });

  test("every bad variable is listed in one ConfigError", () => {
    const error = configError({
      BIFROST_DATABASE_URL: "not a url",
      BIFROST_GRPC_LISTEN: "localhost",
      BIFROST_LOG_LEVEL: "loud",
      BIFROST_BOOTSTRAP_ADMIN_EMAIL: "root",
      BIFROST_MODULE_MAX_BYTES: "lots",
      BIFROST_MODULE_CACHE_TTL_SECONDS: "-1",
      BIFROST_SHUTDOWN_GRACE_MS: "1.5",
    });
    expect(variables(error).sort()).toEqual(
      [
        "BIFROST_BOOTSTRAP_ADMIN_EMAIL",
        "BIFROST_DATABASE_URL",
        "BIFROST_GRPC_LISTEN",
        "BIFROST_LOG_LEVEL",
        "BIFROST_MODULE_CACHE_TTL_SECONDS",
        "BIFROST_MODULE_MAX_BYTES",
        "BIFROST_SECRET_KEYS",
        "BIFROST_SHUTDOWN_GRACE_MS",
      ].sort(),
    );
    for (const name of variables(error)) expect(error.message).toContain(`\n  ${name}: `);
  });

  test("a malformed keyring is listed together with the other bad variables", () => {
    const error = configError({ BIFROST_SECRET_KEYS: "k1:short", BIFROST_LOG_LEVEL: "loud" });
    expect(variables(error).sort()).toEqual(["BIFROST_LOG_LEVEL", "BIFROST_SECRET_KEYS"]);
    expect(error.message).toContain(
      'BIFROST_SECRET_KEYS: key "k1" must be base64 of exactly 32 bytes',
    );
  });

  test("an active key id that is not among the keys names BIFROST_SECRET_ACTIVE_KEY_ID", () => {
    const error = configError({ ...minimal, BIFROST_SECRET_ACTIVE_KEY_ID: "k9" });
    expect(error.problems).toEqual([
      'BIFROST_SECRET_ACTIVE_KEY_ID: active key id "k9" is not among the keys',
    ]);
  });

  test("a module size limit above 16 MiB is refused", () => {
    const error = configError({
      ...minimal,
      BIFROST_MODULE_MAX_BYTES: String(16 * 1024 * 1024 + 1),
    });
    expect(variables(error)).toEqual(["BIFROST_MODULE_MAX_BYTES"]);
  });

  test("a ConfigError never echoes the secret key material", () => {
    const material = Buffer.alloc(16, 9).toString("base64");
    const error = configError({ BIFROST_SECRET_KEYS: `k1:${material}` });
    expect(error.message).not.toContain(material);
  });
});
