import { resolve } from "node:path";
import { z } from "zod";
import type { GitScheme } from "./git/repository-url.js";
import { parseSecretKeyring, type SecretKeyring } from "./secrets/secret-cipher.js";

const schema = z.object({
  // PostgreSQL URL; the database is created if it does not exist.
  BIFROST_DATABASE_URL: z.url().default("postgres://postgres@127.0.0.1:5432/bifrost"),
  // Redis URL for the module cache (never the source of truth).
  BIFROST_REDIS_URL: z.url().default("redis://127.0.0.1:6379/0"),
  // Prefix of every Redis key this deployment writes; lets deployments share a Redis.
  BIFROST_REDIS_KEY_PREFIX: z.string().min(1).default("bifrost:"),
  // host:port the gRPC server listens on. Loopback by default; expose deliberately.
  BIFROST_GRPC_LISTEN: z
    .string()
    .regex(/^[^\s:]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/)
    .default("127.0.0.1:50051"),
  // pino level: fatal, error, warn, info, debug, trace, silent.
  BIFROST_LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
    .default("info"),
  // Secret encryption keys, "keyId:base64(32 bytes)" separated by commas. Required: there
  // is no safe default for a key. Keep old keys listed until every secret is re-sealed.
  BIFROST_SECRET_KEYS: z.string().min(1, "is required (keyId:base64-of-32-bytes[,…])"),
  // The key id new secrets are sealed with; defaults to the first key listed.
  BIFROST_SECRET_ACTIVE_KEY_ID: z.string().optional(),
  // Optional API key installed for the first platform admin instead of a generated one.
  BIFROST_BOOTSTRAP_ADMIN_KEY: z.string().optional(),
  // Optional runner API key installed at start (single-machine setups share it with the runner).
  BIFROST_BOOTSTRAP_RUNNER_KEY: z.string().optional(),
  // Email of the platform admin created on first start.
  BIFROST_BOOTSTRAP_ADMIN_EMAIL: z.email().default("admin@bifrost.local"),
  // Largest module accepted, in bytes.
  BIFROST_MODULE_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
  // Lifetime of module cache entries in Redis, a bound on staleness if a writer dies mid-update.
  BIFROST_MODULE_CACHE_TTL_SECONDS: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 3600),
  // NATS with JetStream, where executions are dispatched to runners.
  BIFROST_NATS_URL: z
    .string()
    .regex(/^nats:\/\/[^\s]+$/)
    .default("nats://127.0.0.1:4222"),
  // Prefix of the JetStream stream, subject and consumer names (deployments sharing a NATS).
  BIFROST_NATS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/)
    .default(""),
  // Deliveries of one execution job before it is failed as lost (a runner died each time).
  BIFROST_JOB_MAX_DELIVER: z.coerce.number().int().min(1).max(20).default(3),
  // How long a runner may go silent on a job before it is redelivered (runners signal progress).
  BIFROST_JOB_ACK_WAIT_MS: z.coerce.number().int().min(1000).default(30_000),
  // Working directory for sandbox trees, per-organization Deno caches and job files.
  BIFROST_WORK_DIR: z.string().min(1).default(".bifrost/work"),
  // Host uid (and gid) discovery's sandboxes run as when the control plane is root (unset:
  // 65534), as BIFROST_RUNNER_SANDBOX_UID is for a runner's.
  BIFROST_DISCOVERY_SANDBOX_UID: z.coerce
    .number()
    .int()
    .min(1, "must not be 0 (root)")
    .max(2 ** 32 - 2)
    .optional(),
  // host:port where Prometheus metrics are served (GET /metrics), or "off". Loopback by
  // default: metrics are read without credentials; expose them to the scraper deliberately.
  BIFROST_METRICS_LISTEN: z
    .string()
    .regex(/^off$|^[^\s:]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, 'must be host:port or "off"')
    .default("127.0.0.1:9464"),
  // host:port of the HTTP listener for git push webhooks (POST /hooks/git/{binding id}).
  BIFROST_HTTP_LISTEN: z
    .string()
    .regex(/^[^\s:]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/)
    .default("127.0.0.1:50080"),
  // Transports git bindings may use, comma-separated from https, http, ssh, file. file and
  // http are off by default: file URLs name paths on this host, http is unencrypted.
  BIFROST_GIT_ALLOWED_SCHEMES: z
    .string()
    .regex(
      /^(https|http|ssh|file)(,(https|http|ssh|file))*$/,
      "must list https, http, ssh or file, comma-separated",
    )
    .default("https,ssh"),
  // Whether repository hosts may be on loopback, private or link-local networks (SSRF guard).
  BIFROST_GIT_ALLOW_PRIVATE_HOSTS: z.enum(["true", "false"]).default("false"),
  // Longest a git process may go without output before it is killed.
  BIFROST_GIT_TIMEOUT_SECONDS: z.coerce.number().int().min(5).max(3600).default(120),
  // Most files a bound repository's tree may have.
  BIFROST_GIT_MAX_FILES: z.coerce.number().int().positive().default(20_000),
  // Shortest poll interval a binding may ask for, and how often due polls are looked for.
  BIFROST_GIT_MIN_POLL_SECONDS: z.coerce.number().int().min(1).default(30),
  BIFROST_GIT_POLL_TICK_MS: z.coerce.number().int().min(100).default(5_000),
  // How long in-flight calls may take to finish on SIGTERM before the server is forced down.
  BIFROST_SHUTDOWN_GRACE_MS: z.coerce.number().int().nonnegative().default(10_000),
});

/** The control plane's configuration, parsed once at start. */
export interface Config {
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  grpcListen: string;
  logLevel: string;
  secretKeyring: SecretKeyring;
  bootstrapAdminKey: string | undefined;
  bootstrapAdminEmail: string;
  bootstrapRunnerKey: string | undefined;
  moduleMaxBytes: number;
  moduleCacheTtlSeconds: number;
  shutdownGraceMs: number;
  workDir: string;
  /** Host uid of discovery's sandboxes when the control plane is root (unset: 65534). */
  discoverySandboxUid: number | undefined;
  natsUrl: string;
  natsPrefix: string;
  jobMaxDeliver: number;
  jobAckWaitMs: number;
  httpListen: string;
  /** host:port where metrics are served, or null for none. */
  metricsListen: string | null;
  git: {
    allowedSchemes: GitScheme[];
    allowPrivateHosts: boolean;
    timeoutMs: number;
    maxFiles: number;
    minPollSeconds: number;
    pollTickMs: number;
  };
}

/** Raised with every invalid variable listed, so one start shows everything to fix. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/**
 * The keyring from BIFROST_SECRET_KEYS and BIFROST_SECRET_ACTIVE_KEY_ID, or undefined after
 * adding to `problems` what is wrong with whichever of the two is bad.
 */
function keyringFromEnv(env: NodeJS.ProcessEnv, problems: string[]): SecretKeyring | undefined {
  const spec = env.BIFROST_SECRET_KEYS;
  if (!spec) return undefined; // the schema reports it missing
  try {
    parseSecretKeyring(spec);
  } catch (error) {
    problems.push(`BIFROST_SECRET_KEYS: ${(error as Error).message}`);
    return undefined;
  }
  // The keys parse, so only the active key id can be wrong now.
  try {
    return parseSecretKeyring(spec, env.BIFROST_SECRET_ACTIVE_KEY_ID);
  } catch (error) {
    problems.push(`BIFROST_SECRET_ACTIVE_KEY_ID: ${(error as Error).message}`);
    return undefined;
  }
}

/** Variables whose values may hold credentials: a ConfigError never repeats them. */
const credentialVariables = new Set([
  "BIFROST_DATABASE_URL",
  "BIFROST_REDIS_URL",
  "BIFROST_NATS_URL",
  "BIFROST_SECRET_KEYS",
  "BIFROST_BOOTSTRAP_ADMIN_KEY",
  "BIFROST_BOOTSTRAP_RUNNER_KEY",
]);

/** Parses the environment; throws one ConfigError naming every bad variable and its value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => {
        const name = String(issue.path[0]);
        const value = env[name];
        const got =
          value === undefined || credentialVariables.has(name)
            ? ""
            : ` (got ${JSON.stringify(value)})`;
        return `${issue.path.join(".")}: ${issue.message}${got}`;
      });
  // Checked even when other variables are bad, so one failed start lists everything to fix.
  const secretKeyring = keyringFromEnv(env, problems);
  if (!parsed.success || !secretKeyring) throw new ConfigError(problems);
  const vars = parsed.data;
  return {
    databaseUrl: vars.BIFROST_DATABASE_URL,
    redisUrl: vars.BIFROST_REDIS_URL,
    redisKeyPrefix: vars.BIFROST_REDIS_KEY_PREFIX,
    grpcListen: vars.BIFROST_GRPC_LISTEN,
    logLevel: vars.BIFROST_LOG_LEVEL,
    secretKeyring,
    bootstrapAdminKey: vars.BIFROST_BOOTSTRAP_ADMIN_KEY,
    bootstrapAdminEmail: vars.BIFROST_BOOTSTRAP_ADMIN_EMAIL,
    bootstrapRunnerKey: vars.BIFROST_BOOTSTRAP_RUNNER_KEY,
    moduleMaxBytes: vars.BIFROST_MODULE_MAX_BYTES,
    moduleCacheTtlSeconds: vars.BIFROST_MODULE_CACHE_TTL_SECONDS,
    shutdownGraceMs: vars.BIFROST_SHUTDOWN_GRACE_MS,
    workDir: resolve(vars.BIFROST_WORK_DIR),
    discoverySandboxUid: vars.BIFROST_DISCOVERY_SANDBOX_UID,
    natsUrl: vars.BIFROST_NATS_URL,
    natsPrefix: vars.BIFROST_NATS_PREFIX,
    jobMaxDeliver: vars.BIFROST_JOB_MAX_DELIVER,
    jobAckWaitMs: vars.BIFROST_JOB_ACK_WAIT_MS,
    httpListen: vars.BIFROST_HTTP_LISTEN,
    metricsListen: vars.BIFROST_METRICS_LISTEN === "off" ? null : vars.BIFROST_METRICS_LISTEN,
    git: {
      allowedSchemes: [...new Set(vars.BIFROST_GIT_ALLOWED_SCHEMES.split(",") as GitScheme[])],
      allowPrivateHosts: vars.BIFROST_GIT_ALLOW_PRIVATE_HOSTS === "true",
      timeoutMs: vars.BIFROST_GIT_TIMEOUT_SECONDS * 1000,
      maxFiles: vars.BIFROST_GIT_MAX_FILES,
      minPollSeconds: vars.BIFROST_GIT_MIN_POLL_SECONDS,
      pollTickMs: vars.BIFROST_GIT_POLL_TICK_MS,
    },
  };
}
