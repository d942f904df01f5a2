// @ts-self-types="./runtime.d.ts"

/**
 * The few Deno and web APIs the SDK's entry functions use, typed here rather than through
 * Deno's or Node's global types: the SDK compiles with neither, and every other file stays
 * runtime-neutral (the control plane imports the params module in Node).
 */

/** A connected Unix socket. */
export interface DenoConn {
  read(buffer: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  /** Lets the process end while a read is pending (unref) or not (ref). */
  ref(): void;
  unref(): void;
}

/** The part of the `Deno` namespace the SDK uses. */
export interface DenoApi {
  connect(options: { transport: "unix"; path: string }): Promise<DenoConn>;
  env: { get(name: string): string | undefined };
  exit(code?: number): never;
}

/** Events the SDK listens to on globalThis. */
export interface GlobalEvent {
  readonly reason?: unknown;
  readonly error?: unknown;
  preventDefault(): void;
}

interface Globals {
  Deno?: DenoApi;
  TextEncoder: new () => { encode(text: string): Uint8Array };
  TextDecoder: new () => { decode(bytes: Uint8Array, options?: { stream: boolean }): string };
  addEventListener(type: string, listener: (event: GlobalEvent) => void): void;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const globals = globalThis as unknown as Globals;

/** The Deno namespace; throws outside Deno. */
export function deno(): DenoApi {
  const api = globals.Deno;
  if (!api) throw new Error("the bifrost entry functions run only inside Deno");
  return api;
}

/** UTF-8 encoding and streaming decoding. */
export function utf8() {
  return { encoder: new globals.TextEncoder(), decoder: new globals.TextDecoder() };
}

/**
 * Listens to a global event: "unhandledrejection", "error" (an uncaught exception) or
 * "beforeunload" (the event loop ran dry: nothing can settle a pending promise any more).
 */
export function onGlobal(
  type: "unhandledrejection" | "error" | "beforeunload",
  listener: (event: GlobalEvent) => void,
): void {
  globals.addEventListener(type, listener);
}

/** Calls `callback` after `ms` milliseconds; returns a function that cancels it. */
export function startTimer(ms: number, callback: () => void): () => void {
  const handle = globals.setTimeout(callback, ms);
  return () => globals.clearTimeout(handle);
}

/** Writes a line to stderr, for problems that cannot be reported over the channel. */
export function printError(message: string): void {
  const { encoder } = utf8();
  const stderr = (globals.Deno as unknown as { stderr?: { writeSync(data: Uint8Array): number } })
    ?.stderr;
  stderr?.writeSync(encoder.encode(`bifrost: ${message}\n`));
}
