// @ts-self-types="./channel.d.ts"

import type { ContextPort } from "./context.js";
import {
  type CallMethod,
  type CallMethods,
  type CompletionMessage,
  maxMessageBytes,
  type NotificationMessage,
  type ReplyMessage,
  refusedExitCode,
  type SdkMessage,
  type StartMessage,
} from "./protocol.js";
import { type DenoConn, deno, printError, utf8 } from "./runtime.js";

/**
 * The SDK's end of the channel: connects to BIFROST_SOCKET, says hello with BIFROST_TOKEN,
 * waits for `start`, then carries calls, notifications and the one completion. The socket is
 * unref'd whenever no call waits for a reply, so a workflow awaiting something nothing can
 * settle lets the event loop run dry and the entry functions can report it.
 */

/** An open channel after a successful `start`. */
export interface Channel extends ContextPort {
  readonly start: Exclude<StartMessage, { type: "refused" }>;
  /** Sends the completion, waits until it is written, and exits the process with code 0. */
  complete(message: CompletionMessage): Promise<never>;
  /** The size of a message as a line, in bytes (for checking results against the limit). */
  lineBytes(message: SdkMessage): number;
}

/** Exit code when the channel cannot be used at all (no socket, runner gone, bad message). */
export const channelExitCode = 2;

/** Opens the channel; on any failure reports on stderr and exits (nothing else can report). */
export async function openChannel(): Promise<Channel> {
  const api = deno();
  const path = api.env.get("BIFROST_SOCKET");
  const token = api.env.get("BIFROST_TOKEN");
  if (!path || token === undefined) {
    printError(
      "BIFROST_SOCKET and BIFROST_TOKEN must be set: run workflows with the runner or bifrost-local",
    );
    return api.exit(channelExitCode);
  }
  let conn: DenoConn;
  try {
    conn = await api.connect({ transport: "unix", path });
  } catch (error) {
    printError(`cannot connect to the runner at ${path}: ${(error as Error).message}`);
    return api.exit(channelExitCode);
  }
  const { encoder, decoder } = utf8();
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 1;
  let completed = false;
  let tail: Promise<void> = Promise.resolve();
  let onStart: (message: StartMessage) => void = () => {};
  const started = new Promise<StartMessage>((resolve) => {
    onStart = resolve;
  });

  const fatal = (message: string): never => {
    printError(message);
    return api.exit(channelExitCode);
  };
  const encode = (message: SdkMessage) => encoder.encode(`${JSON.stringify(message)}\n`);
  const write = (bytes: Uint8Array): Promise<void> => {
    tail = tail.then(async () => {
      let offset = 0;
      while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
    });
    tail.catch((error: Error) => fatal(`lost the runner while writing: ${error.message}`));
    return tail;
  };
  let startedYet = false;
  const refresh = () => (pending.size > 0 || !startedYet ? conn.ref() : conn.unref());

  const dispatch = (line: string) => {
    let message: StartMessage | ReplyMessage;
    try {
      message = JSON.parse(line);
    } catch {
      return fatal(`the runner sent a line that is not JSON: ${line.slice(0, 200)}`);
    }
    if (message.type === "reply") {
      const waiter = pending.get(message.id);
      if (!waiter) return fatal(`the runner replied to unknown call ${message.id}`);
      pending.delete(message.id);
      refresh();
      if ("error" in message) {
        const error = new Error(message.error.message);
        error.name = message.error.name;
        waiter.reject(error);
      } else {
        waiter.resolve(message.result);
      }
    } else if (message.type === "start" || message.type === "refused") {
      if (startedYet) return fatal("the runner sent a second start");
      startedYet = true;
      onStart(message);
    } else {
      return fatal(
        `the runner sent an unknown message type ${JSON.stringify((message as { type: unknown }).type)}`,
      );
    }
  };

  void (async () => {
    const buffer = new Uint8Array(64 * 1024);
    let text = "";
    for (;;) {
      let count: number | null;
      try {
        count = await conn.read(buffer);
      } catch (error) {
        if (completed) return;
        return fatal(`lost the runner: ${(error as Error).message}`);
      }
      if (count === null) return completed ? undefined : fatal("the runner closed the channel");
      text += decoder.decode(buffer.subarray(0, count), { stream: true });
      if (text.length > 4 * maxMessageBytes)
        return fatal("the runner sent a line over the size limit");
      for (let newline = text.indexOf("\n"); newline !== -1; newline = text.indexOf("\n")) {
        const line = text.slice(0, newline);
        text = text.slice(newline + 1);
        if (line.trim()) dispatch(line);
      }
    }
  })();

  conn.ref();
  await write(encode({ type: "hello", token }));
  const start = await started;
  refresh();
  if (start.type === "refused") {
    printError(`the runner refused this process: ${start.message}`);
    return api.exit(refusedExitCode);
  }

  return {
    start,
    lineBytes: (message) => encode(message).length - 1,
    call<M extends CallMethod>(method: M, params: CallMethods[M]["params"]) {
      const id = nextId++;
      const bytes = encode({ type: "call", id, method, params });
      if (bytes.length - 1 > maxMessageBytes) {
        return Promise.reject(
          new RangeError(
            `${method} is ${bytes.length - 1} bytes as JSON; at most ${maxMessageBytes} fit a message`,
          ),
        );
      }
      const reply = new Promise<CallMethods[M]["result"]>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      });
      refresh();
      void write(bytes);
      return reply;
    },
    notify(message: NotificationMessage) {
      let bytes = encode(message);
      if (bytes.length - 1 > maxMessageBytes) {
        if (message.type === "checkpoint") {
          throw new RangeError(
            `checkpoint ${JSON.stringify(message.name)} is ${bytes.length - 1} bytes as JSON; at most ${maxMessageBytes} fit a message`,
          );
        }
        bytes = encode({
          type: "log",
          level: message.level,
          message: message.message.slice(0, 64 * 1024),
          data: `[omitted: the log line was ${bytes.length - 1} bytes; at most ${maxMessageBytes} fit a message]`,
        });
      }
      void write(bytes);
    },
    async complete(message: CompletionMessage): Promise<never> {
      // A second completion (an unhandled rejection racing the handler) waits for the first.
      if (completed) return new Promise<never>(() => {});
      completed = true;
      conn.ref();
      await write(encode(message));
      return api.exit(0);
    },
  };
}
