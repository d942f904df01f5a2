import { createServer, type Socket } from "node:net";
import type { JsonValue } from "../meta.js";
import {
  type CallMessage,
  type CompletionMessage,
  maxMessageBytes,
  type NotificationMessage,
  type RunnerMessage,
  type SdkMessage,
  type StartMessage,
} from "../protocol.js";

/**
 * The runner's end of the SDK channel (docs/execution-contract.md), for bifrost-local and the
 * SDK's tests: listens on a Unix socket, checks the hello token, sends `start`, answers calls
 * through `handle`, passes notifications on and resolves with the one completion. It accepts
 * one connection; the channel is dropped on a malformed or oversized line.
 */

/** What the server says after a good hello: the start message without its type. */
export type StartInfo =
  Extract<StartMessage, { type: "start" }> extends infer M
    ? M extends { type: "start" }
      ? Omit<M, "type">
      : never
    : never;

export interface ChannelServerOptions {
  /** The Unix socket path to listen on. */
  path: string;
  token: string;
  start: StartInfo;
  /** Answers a call; a thrown error becomes an error reply `{ name, message }`. */
  handle(method: CallMessage["method"], params: JsonValue): Promise<JsonValue> | JsonValue;
  onNotification?(message: NotificationMessage): void;
}

export interface ChannelServer {
  /** The completion, or undefined when the connection ended without one. */
  readonly completion: Promise<CompletionMessage | undefined>;
  /** Every message the SDK sent, in order (the hello's token replaced by "…"). */
  readonly transcript: SdkMessage[];
  /** Problems with what the SDK sent (bad JSON, unknown types, a second completion). */
  readonly violations: string[];
  close(): Promise<void>;
}

const completionTypes = new Set(["result", "failure", "discovered"]);

/** Starts listening; resolves once the socket accepts connections. */
export async function createChannelServer(options: ChannelServerOptions): Promise<ChannelServer> {
  const transcript: SdkMessage[] = [];
  const violations: string[] = [];
  let completion: CompletionMessage | undefined;
  let finish: (value: CompletionMessage | undefined) => void = () => {};
  const completed = new Promise<CompletionMessage | undefined>((resolve) => {
    finish = resolve;
  });
  let connected = false;

  const serve = (socket: Socket) => {
    if (connected) {
      socket.destroy();
      return;
    }
    connected = true;
    let helloSeen = false;
    let buffered = "";
    const send = (message: RunnerMessage) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
    };
    const violate = (problem: string) => {
      violations.push(problem);
      socket.destroy();
    };
    const receive = async (line: string) => {
      let message: SdkMessage;
      try {
        message = JSON.parse(line) as SdkMessage;
      } catch {
        return violate(`not JSON: ${line.slice(0, 200)}`);
      }
      if (!helloSeen) {
        if (message.type !== "hello")
          return violate(`expected hello first, got ${JSON.stringify(message.type)}`);
        helloSeen = true;
        transcript.push({ type: "hello", token: "…" });
        if (message.token !== options.token)
          return send({ type: "refused", message: "invalid execution token" });
        return send({ type: "start", ...options.start } as StartMessage);
      }
      transcript.push(message);
      if (completionTypes.has(message.type)) {
        if (completion) return violate("a second completion message");
        completion = message as CompletionMessage;
        return;
      }
      if (message.type === "log" || message.type === "checkpoint")
        return options.onNotification?.(message);
      if (message.type !== "call")
        return violate(`unknown message type ${JSON.stringify(message.type)}`);
      try {
        send({
          type: "reply",
          id: message.id,
          result: await options.handle(message.method, message.params),
        });
      } catch (error) {
        const { name, message: text } = error instanceof Error ? error : new Error(String(error));
        send({ type: "reply", id: message.id, error: { name, message: text } });
      }
    };
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      for (let newline = buffered.indexOf("\n"); newline !== -1; newline = buffered.indexOf("\n")) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (Buffer.byteLength(line) > maxMessageBytes)
          return violate(`a line of ${Buffer.byteLength(line)} bytes`);
        if (line.trim()) void receive(line);
      }
      if (Buffer.byteLength(buffered) > maxMessageBytes) violate("a line over the size limit");
    });
    socket.on("error", () => {});
    socket.on("close", () => finish(completion));
  };

  const server = createServer(serve);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.path, () => resolve());
  });
  return {
    completion: completed,
    transcript,
    violations,
    close: () =>
      new Promise<void>((resolve) => {
        if (!connected) finish(undefined);
        // Waits for the connection to end by itself: destroying it could drop unread lines.
        server.close(() => resolve());
      }),
  };
}
