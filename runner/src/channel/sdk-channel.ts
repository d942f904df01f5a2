import { timingSafeEqual } from "node:crypto";
import { chmodSync } from "node:fs";
import { unlink } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { createRedactor, type Redactor } from "./redactor.js";

/** What an execution may ask of the platform through the SDK (backed by the control plane). */
export interface ExecutionServices {
  /** `secret` marks a value that is a secret (a config entry referencing one): it is redacted. */
  getConfig(key: string): Promise<{ found: boolean; value?: unknown; secret?: boolean }>;
  getSecret(name: string): Promise<{ found: boolean; value?: string }>;
  getVariable(name: string): Promise<{ found: boolean; value?: unknown }>;
  setVariable(name: string, value: unknown): Promise<void>;
  log(entry: { level: LogLevel; message: string; data?: unknown }): void;
  checkpoint(entry: { name: string; data?: unknown }): void;
}

export type LogLevel = "debug" | "info" | "warning" | "error";

/** How the SDK side ended its run, as it reported over the channel. */
export type ChannelCompletion =
  | { type: "result"; value: unknown }
  | {
      type: "failure";
      error: { name: string; message: string; stack: string; retryable: boolean; kind: string };
    }
  | { type: "discovered"; workflows: unknown[]; dataProviders: unknown[]; errors: unknown[] };

/** Limits on what one execution may send. */
export interface ChannelLimits {
  /** Longest single message, in bytes. */
  maxLineBytes: number;
  /** Most messages (logs, checkpoints, calls) per execution. */
  maxMessages: number;
}

export const defaultChannelLimits: ChannelLimits = {
  maxLineBytes: 1024 * 1024,
  maxMessages: 100_000,
};

/** The runner's end of one execution's SDK channel. */
export interface SdkChannel {
  /** The socket file to bind into the sandbox (at /run/bifrost/sdk.sock). */
  socketPath: string;
  /** The completion message, if the SDK sent one. */
  completion(): ChannelCompletion | undefined;
  /** Settles when the SDK has sent its completion (never, if it does not). */
  completed: Promise<void>;
  /** Why the channel was cut off, if it was (bad token, oversized message, protocol error). */
  violation(): string | undefined;
  /** Secret values seen by this execution, for redacting its output. */
  redactor: Redactor;
  /**
   * Gives a channel opened without them its start message and services: the SDK, which may
   * have said hello already and waits, gets the start message now. Once only.
   */
  begin(start: Record<string, unknown>, services: ExecutionServices): void;
  close(): Promise<void>;
}

const levels = new Set(["debug", "info", "warning", "error"]);

/**
 * Listens on `socketPath` for one execution. The first line must be a hello with the
 * execution token; the runner answers with the start message. Calls are answered through
 * `services`; every secret value handed out is remembered so logs, variables, checkpoints and
 * the result can be redacted. Anything malformed ends the connection and is reported as a
 * violation: the channel is the only trusted path out of the sandbox, so it is strict.
 */
export async function openSdkChannel(options: {
  /** Where to listen: a path of its own, in a directory only the runner can list. */
  socketPath: string;
  token: string;
  /** Without them, the SDK's hello is answered once `begin` gives them (a prepared sandbox). */
  start?: Record<string, unknown>;
  services?: ExecutionServices;
  limits?: ChannelLimits;
}): Promise<SdkChannel> {
  const limits = options.limits ?? defaultChannelLimits;
  let job = options.start &&
    options.services && { start: options.start, services: options.services };
  let sendStart: (() => void) | undefined;
  const { socketPath } = options;
  const redactor = createRedactor();
  let completion: ChannelCompletion | undefined;
  let markCompleted = () => {};
  const completed = new Promise<void>((resolve) => {
    markCompleted = resolve;
  });
  let violation: string | undefined;
  let connected = false;
  let messages = 0;
  const sockets = new Set<Socket>();

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    if (connected) {
      // One SDK per execution: a second connection is refused.
      socket.destroy();
      return;
    }
    connected = true;
    let greeted = false;
    const send = (message: unknown) => socket.write(`${JSON.stringify(message)}\n`);
    const cut = (reason: string) => {
      violation ??= reason;
      socket.destroy();
    };
    const lines = createInterface({ input: socket, crlfDelay: Number.POSITIVE_INFINITY });
    socket.on("data", (chunk) => {
      // readline buffers a line without bound; refuse one that grows past the limit.
      if (chunk.length > limits.maxLineBytes && !chunk.includes(10))
        cut("message larger than the channel allows");
    });
    lines.on("line", (line) => {
      if (Buffer.byteLength(line) > limits.maxLineBytes)
        return cut("message larger than the channel allows");
      if (++messages > limits.maxMessages) return cut(`more than ${limits.maxMessages} messages`);
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return cut("a message that is not JSON");
      }
      if (!greeted) {
        if (message.type !== "hello" || !tokenMatches(message.token, options.token)) {
          send({ type: "refused", message: "invalid execution token" });
          return cut("invalid execution token");
        }
        greeted = true;
        sendStart = () => send(job?.start);
        if (job) sendStart();
        return;
      }
      handleMessage(message, send, cut).catch((error: unknown) =>
        cut(`channel error: ${(error as Error).message}`),
      );
    });
  });

  async function handleMessage(
    message: Record<string, unknown>,
    send: (m: unknown) => void,
    cut: (reason: string) => void,
  ): Promise<void> {
    // The SDK sends nothing after its hello until it has the start message.
    if (!job) return cut("a message before the start message");
    const { services } = job;
    switch (message.type) {
      case "log": {
        const level = String(message.level);
        if (!levels.has(level)) return cut(`unknown log level ${JSON.stringify(level)}`);
        services.log({
          level: level as LogLevel,
          message: redactor.text(String(message.message ?? "")),
          ...(message.data !== undefined && { data: redactor.json(message.data) }),
        });
        return;
      }
      case "checkpoint":
        services.checkpoint({
          name: redactor.text(String(message.name ?? "")),
          data: redactor.json(message.data),
        });
        return;
      case "call": {
        const id = message.id;
        const params = (message.params ?? {}) as Record<string, unknown>;
        try {
          send({ type: "reply", id, result: await call(String(message.method), params) });
        } catch (error) {
          send({
            type: "reply",
            id,
            error: { name: (error as Error).name, message: (error as Error).message },
          });
        }
        return;
      }
      case "result":
      case "failure":
      case "discovered":
        if (completion) return cut("a second completion message");
        completion = redactor.json(message) as unknown as ChannelCompletion;
        markCompleted();
        return;
      default:
        return cut(`unknown message type ${JSON.stringify(message.type)}`);
    }
  }

  async function call(method: string, params: Record<string, unknown>): Promise<unknown> {
    const services = (job as NonNullable<typeof job>).services;
    switch (method) {
      case "config.get": {
        const { secret, ...answer } = await services.getConfig(String(params.key));
        if (secret && typeof answer.value === "string") redactor.add(answer.value);
        return answer;
      }
      case "secrets.get": {
        const secret = await services.getSecret(String(params.name));
        if (secret.found && secret.value !== undefined) redactor.add(secret.value);
        return secret;
      }
      case "variables.get":
        return services.getVariable(String(params.name));
      case "variables.set":
        await services.setVariable(String(params.name), redactor.json(params.value));
        return {};
      default:
        throw new Error(`unknown method ${JSON.stringify(method)}`);
    }
  }

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
  try {
    await listen();
  } catch (error) {
    // A socket file left at the path (a crashed run's): remove it and try once more.
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    await unlink(socketPath);
    await listen();
  }
  // The sandboxed process runs as another uid: let it connect. Its name is random, in a
  // directory no other uid can list, and only it is bind-mounted into its sandbox.
  chmodSync(socketPath, 0o666);

  return {
    socketPath,
    completion: () => completion,
    completed,
    violation: () => violation,
    redactor,
    begin(start, services) {
      if (job) throw new Error("the channel has its start message already");
      job = { start, services };
      sendStart?.();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      // Closing a listening Unix socket removes its file (libuv unlinks it).
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function tokenMatches(presented: unknown, expected: string): boolean {
  if (typeof presented !== "string") return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
