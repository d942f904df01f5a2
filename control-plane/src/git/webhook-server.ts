import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { systemActor } from "../audit/audit-log.js";
import type { Logger } from "../log.js";
import type { GitBindingStore } from "./binding-store.js";
import type { GitSyncer } from "./git-sync.js";

/** Largest webhook body accepted; GitHub caps push payloads at 25 MB, but we read one field. */
const maxBodyBytes = 1024 * 1024;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Path of a binding's push webhook. */
export const webhookPath = (bindingId: string) => `/hooks/git/${bindingId}`;

/** Checks a GitHub-style `X-Hub-Signature-256: sha256=<hex>` over the raw body. */
export function verifySignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header?.startsWith("sha256=")) return false;
  const given = Buffer.from(header.slice("sha256=".length), "hex");
  const expected = createHmac("sha256", secret).update(body).digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The HTTP listener for push webhooks. */
export interface WebhookServer {
  /** host:port it listens on. */
  address: string;
  close(): Promise<void>;
}

function reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Serves `POST /hooks/git/{binding id}`: 404 for an unknown binding, 401 unless the body is
 * signed with the binding's webhook secret, 202 and a sync in the background for a push to
 * the bound branch (the sender is not kept waiting on git), 202 "ignored" for other refs and
 * events, 200 for GitHub's ping.
 */
export async function startWebhookServer(deps: {
  listen: string;
  bindings: GitBindingStore;
  syncer: GitSyncer;
  log: Logger;
}): Promise<WebhookServer> {
  const { bindings, syncer, log } = deps;
  const pending = new Set<Promise<unknown>>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = /^\/hooks\/git\/([^/?]+)$/.exec((req.url ?? "").split("?")[0] ?? "");
    if (!match) return reply(res, 404, { error: "not found" });
    if (req.method !== "POST") return reply(res, 405, { error: "use POST" });
    const id = (match[1] as string).toLowerCase();
    const binding = uuidPattern.test(id) ? await bindings.webhook(id) : undefined;
    if (!binding) return reply(res, 404, { error: `unknown git binding "${match[1]}"` });
    const body = await readBody(req);
    if (!body) return reply(res, 413, { error: `body larger than ${maxBodyBytes} bytes` });
    const signature = req.headers["x-hub-signature-256"];
    if (
      !verifySignature(binding.secret, body, typeof signature === "string" ? signature : undefined)
    ) {
      log.warn({ bindingId: id }, "git webhook signature rejected");
      return reply(res, 401, { error: "signature missing or invalid (X-Hub-Signature-256)" });
    }
    const event = req.headers["x-github-event"];
    if (event === "ping") return reply(res, 200, { ok: true });
    if (event !== undefined && event !== "push") {
      return reply(res, 202, { ignored: `event "${String(event)}" is not a push` });
    }
    let ref: unknown;
    try {
      ref = (JSON.parse(body.toString("utf8")) as { ref?: unknown }).ref;
    } catch {
      return reply(res, 400, { error: "body is not JSON" });
    }
    if (ref !== `refs/heads/${binding.branch}`) {
      return reply(res, 202, {
        ignored: `push to ${String(ref)}, bound branch is ${binding.branch}`,
      });
    }
    const work = syncer
      .sync(id, "webhook", systemActor)
      .catch((error: unknown) => log.warn({ err: error, bindingId: id }, "webhook git sync failed"))
      .finally(() => pending.delete(work));
    pending.add(work);
    reply(res, 202, { sync: "started" });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log.error({ err: error }, "git webhook failed");
      if (!res.headersSent) reply(res, 500, { error: "internal error" });
    });
  });
  const [host, port] = splitHostPort(deps.listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return {
    address: `${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await Promise.allSettled([...pending]);
    },
  };
}

function splitHostPort(listen: string): [string, number] {
  const at = listen.lastIndexOf(":");
  return [listen.slice(0, at).replace(/^\[|\]$/g, ""), Number(listen.slice(at + 1))];
}
