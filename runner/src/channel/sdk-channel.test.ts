import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, beforeEach, expect, test } from "vitest";
import { type ExecutionServices, openSdkChannel, type SdkChannel } from "./sdk-channel.js";

let dir: string;
let channel: SdkChannel | undefined;
const logs: unknown[] = [];
const checkpoints: unknown[] = [];
const variables = new Map<string, unknown>();

const services: ExecutionServices = {
  getConfig: async (key) => {
    if (key === "halo.url") return { found: true, value: "https://a.halo" };
    if (key === "db.password") return { found: true, value: "cfg-secret-value", secret: true };
    return { found: false };
  },
  getSecret: async (name) =>
    name === "halo.token" ? { found: true, value: "s3cr3t-token" } : { found: false },
  getVariable: async (name) =>
    variables.has(name) ? { found: true, value: variables.get(name) } : { found: false },
  setVariable: async (name, value) => {
    variables.set(name, value);
  },
  log: (entry) => logs.push(entry),
  checkpoint: (entry) => checkpoints.push(entry),
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "bifrost-channel-"));
  logs.length = 0;
  checkpoints.length = 0;
  variables.clear();
});

afterEach(async () => {
  await channel?.close();
  channel = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** A client speaking the SDK side of the protocol. */
async function client(path: string) {
  const socket: Socket = connect(path);
  await new Promise((resolve) => socket.once("connect", resolve));
  const lines = createInterface({ input: socket })[Symbol.asyncIterator]();
  return {
    send: (m: unknown) => socket.write(`${JSON.stringify(m)}\n`),
    sendRaw: (raw: string) => socket.write(raw),
    next: async () =>
      JSON.parse(((await lines.next()).value as string) ?? "null") as Record<string, unknown>,
    closed: new Promise((resolve) => socket.once("close", resolve)),
    end: () => socket.end(),
  };
}

const open = async () => {
  channel = await openSdkChannel({
    socketPath: join(dir, "sdk.sock"),
    token: "tok-123",
    start: { type: "start", mode: "run", params: { a: 1 } },
    services,
  });
  return channel;
};

test("a wrong token is refused and reported as a violation", async () => {
  const ch = await open();
  const c = await client(ch.socketPath);
  c.send({ type: "hello", token: "tok-999" });
  expect(await c.next()).toEqual({ type: "refused", message: "invalid execution token" });
  await c.closed;
  expect(ch.violation()).toBe("invalid execution token");
});

test("the SDK gets its start message, config, secrets and variables, and its result is kept", async () => {
  const ch = await open();
  const c = await client(ch.socketPath);
  c.send({ type: "hello", token: "tok-123" });
  expect(await c.next()).toEqual({ type: "start", mode: "run", params: { a: 1 } });
  c.send({ type: "call", id: 1, method: "config.get", params: { key: "halo.url" } });
  expect(await c.next()).toEqual({
    type: "reply",
    id: 1,
    result: { found: true, value: "https://a.halo" },
  });
  c.send({ type: "call", id: 2, method: "secrets.get", params: { name: "halo.token" } });
  expect(await c.next()).toEqual({
    type: "reply",
    id: 2,
    result: { found: true, value: "s3cr3t-token" },
  });
  c.send({ type: "call", id: 3, method: "variables.set", params: { name: "n", value: 7 } });
  expect(await c.next()).toEqual({ type: "reply", id: 3, result: {} });
  c.send({ type: "call", id: 4, method: "nope", params: {} });
  expect((await c.next()).error).toMatchObject({ message: 'unknown method "nope"' });
  c.send({ type: "result", value: { ok: true } });
  c.end();
  await c.closed;
  expect(ch.completion()).toEqual({ type: "result", value: { ok: true } });
  expect(variables.get("n")).toBe(7);
  expect(ch.violation()).toBeUndefined();
});

test("revealed secret values are redacted from logs, checkpoints, variables and the result", async () => {
  const ch = await open();
  const c = await client(ch.socketPath);
  c.send({ type: "hello", token: "tok-123" });
  await c.next();
  c.send({ type: "call", id: 1, method: "secrets.get", params: { name: "halo.token" } });
  await c.next();
  c.send({
    type: "log",
    level: "info",
    message: "token is s3cr3t-token",
    data: { t: "s3cr3t-token" },
  });
  c.send({ type: "checkpoint", name: "cp", data: ["xs3cr3t-tokenx"] });
  c.send({
    type: "call",
    id: 2,
    method: "variables.set",
    params: { name: "v", value: "s3cr3t-token" },
  });
  await c.next();
  c.send({
    type: "failure",
    error: {
      name: "Error",
      message: "bad s3cr3t-token",
      stack: "",
      retryable: false,
      kind: "user",
    },
  });
  c.end();
  await c.closed;
  expect(logs).toEqual([
    { level: "info", message: "token is [redacted]", data: { t: "[redacted]" } },
  ]);
  expect(checkpoints).toEqual([{ name: "cp", data: ["x[redacted]x"] }]);
  expect(variables.get("v")).toBe("[redacted]");
  expect(JSON.stringify(ch.completion())).not.toContain("s3cr3t");
});

test("protocol violations cut the channel: a second completion, unknown types, oversized lines", async () => {
  const ch = await open();
  const c = await client(ch.socketPath);
  c.send({ type: "hello", token: "tok-123" });
  await c.next();
  c.send({ type: "result", value: 1 });
  c.send({ type: "result", value: 2 });
  await c.closed;
  expect(ch.violation()).toBe("a second completion message");
  expect(ch.completion()).toEqual({ type: "result", value: 1 });
  await ch.close();

  const small = await openSdkChannel({
    socketPath: join(dir, "sdk.sock"),
    token: "t",
    start: { type: "start" },
    services,
    limits: { maxLineBytes: 1000, maxMessages: 5 },
  });
  channel = small;
  const d = await client(small.socketPath);
  d.send({ type: "hello", token: "t" });
  await d.next();
  d.sendRaw(`${"x".repeat(5000)}`);
  await d.closed;
  expect(small.violation()).toBe("message larger than the channel allows");
});

test("closing removes the socket file, and a file left at its path is replaced", async () => {
  const first = await open();
  await first.close();
  await expect(access(first.socketPath)).rejects.toThrow(/ENOENT/);
  await writeFile(join(dir, "sdk.sock"), "left by a crashed runner");
  const again = await open();
  const c = await client(again.socketPath);
  c.send({ type: "hello", token: "tok-123" });
  expect((await c.next()).type).toBe("start");
});

test("only one connection per execution is served", async () => {
  const ch = await open();
  const first = await client(ch.socketPath);
  first.send({ type: "hello", token: "tok-123" });
  await first.next();
  const second = await client(ch.socketPath);
  await second.closed;
  first.send({ type: "log", level: "info", message: "still here" });
  first.end();
  await first.closed;
  expect(logs).toEqual([{ level: "info", message: "still here" }]);
});

test("a config value that is a secret (a secret_ref) is redacted like secrets.get", async () => {
  const ch = await open();
  const c = await client(ch.socketPath);
  c.send({ type: "hello", token: "tok-123" });
  await c.next();
  c.send({ type: "call", id: 1, method: "config.get", params: { key: "db.password" } });
  expect(await c.next()).toEqual({
    type: "reply",
    id: 1,
    result: { found: true, value: "cfg-secret-value" },
  });
  c.send({ type: "log", level: "info", message: "password cfg-secret-value" });
  c.send({ type: "result", value: "cfg-secret-value" });
  c.end();
  await c.closed;
  expect(logs).toEqual([{ level: "info", message: "password [redacted]" }]);
  expect(ch.completion()).toEqual({ type: "result", value: "[redacted]" });
});
