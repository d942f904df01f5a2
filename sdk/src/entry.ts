// @ts-self-types="./entry.d.ts"

import { type Channel, openChannel } from "./channel.js";
import { createContext } from "./context.js";
import { createDiscovery, findDeclaration } from "./discover.js";
import { findPermissionDenial, SdkFailure, toFailure } from "./errors.js";
import { validateParams } from "./params.js";
import type { FailureInfo } from "./protocol.js";
import { checkOptions, checkResult } from "./result-check.js";
import { deno, type GlobalEvent, onGlobal, printError, startTimer } from "./runtime.js";

/**
 * The entry functions /job/entry.js calls (docs/execution-contract.md, "Entry modes"). Each
 * returns at once and ends the process itself after sending exactly one completion, so
 * entry.js has no pending top-level await and a handler awaiting something nothing can
 * settle is reported ("beforeunload": the event loop ran dry) instead of hanging until the
 * runner's timeout.
 */

/** A module namespace, loaded by a literal `import("file:///workspace/…")` in entry.js. */
export type ModuleLoader = () => Promise<Record<string, unknown>>;

/** What `__bifrostRun` takes: the module (workspace path and loader) and what to run in it. */
export interface RunOptions {
  module: string;
  load: ModuleLoader;
  /** The workflow's name; or give `dataProvider` instead. */
  workflow?: string;
  dataProvider?: string;
}

/** What `__bifrostDiscover` takes: every module to inspect, by workspace path. */
export interface DiscoverOptions {
  modules: Record<string, ModuleLoader>;
  /**
   * How long one module may take to load (default 10 000 ms). A top-level await that never
   * settles cannot be detected otherwise: Deno neither ends the event loop nor reports it
   * while the channel's socket is open.
   */
  moduleTimeoutMs?: number;
}

type Outcome<T> = { value: T } | { error: unknown } | { stalled: true } | { late: true };

let stallWaiter: (() => void) | undefined;

/**
 * Awaits `work`, or notices that nothing is left that could ever settle it (stalled), or
 * gives up after `deadlineMs` (late).
 */
async function guard<T>(work: () => Promise<T> | T, deadlineMs?: number): Promise<Outcome<T>> {
  let cancel = () => {};
  const stalled = new Promise<{ stalled: true } | { late: true }>((resolve) => {
    stallWaiter = () => resolve({ stalled: true });
    if (deadlineMs !== undefined) cancel = startTimer(deadlineMs, () => resolve({ late: true }));
  });
  try {
    const settled = Promise.resolve()
      .then(work)
      .then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
    return await Promise.race([settled, stalled]);
  } finally {
    stallWaiter = undefined;
    cancel();
  }
}

function listenForStalls(): void {
  onGlobal("beforeunload", (event) => {
    const waiter = stallWaiter;
    if (!waiter) return;
    event.preventDefault();
    stallWaiter = undefined;
    waiter();
  });
}

function failWith(channel: Channel, error: unknown, logged: Set<string>): Promise<never> {
  const failure: FailureInfo = toFailure(error);
  if (failure.kind === "permission" && !logged.has(failure.message)) {
    channel.notify({ type: "log", level: "error", message: failure.message });
  }
  return channel.complete({ type: "failure", error: failure });
}

/** Logs each distinct permission denial a fetch meets, even when the workflow catches it. */
function watchFetchDenials(channel: Channel, logged: Set<string>): void {
  const globals = globalThis as { fetch?: (...args: unknown[]) => Promise<unknown> };
  const original = globals.fetch;
  if (!original) return;
  globals.fetch = async function fetch(this: unknown, ...args: unknown[]) {
    try {
      return await original.apply(this, args);
    } catch (error) {
      const denial = findPermissionDenial(error);
      if (denial && !logged.has(denial.message)) {
        logged.add(denial.message);
        channel.notify({
          type: "log",
          level: "error",
          message: denial.message,
          data: { permission: denial.permission, target: denial.target },
        });
      }
      throw error;
    }
  };
}

/** Runs one workflow (or data provider) of one module and reports its result or failure. */
export function __bifrostRun(options: RunOptions): void {
  void run(options).catch(crash);
}

async function run(options: RunOptions): Promise<never> {
  const channel = await openChannel();
  const logged = new Set<string>();
  const fail = (error: unknown) => failWith(channel, error, logged);
  onGlobal("unhandledrejection", (event: GlobalEvent) => {
    event.preventDefault();
    void fail(event.reason);
  });
  onGlobal("error", (event: GlobalEvent) => {
    event.preventDefault();
    void fail(event.error);
  });
  listenForStalls();
  const { start } = channel;
  if (start.mode !== "run") {
    return fail(
      new SdkFailure("internal", "the runner started a discovery but entry.js called __bifrostRun"),
    );
  }
  const kind = options.dataProvider !== undefined ? "dataProvider" : "workflow";
  const name = options.dataProvider ?? options.workflow ?? "";
  const loaded = await guard(options.load);
  if ("stalled" in loaded || "late" in loaded) {
    return fail(
      new SdkFailure(
        "load",
        `${options.module} never finished loading: a top-level await waits for something that can never happen`,
      ),
    );
  }
  if ("error" in loaded) {
    if (findPermissionDenial(loaded.error)) return fail(loaded.error);
    return fail(
      new SdkFailure("load", `${options.module} failed to load: ${describeError(loaded.error)}`, {
        cause: loaded.error,
      }),
    );
  }
  const found = findDeclaration(options.module, loaded.value, kind, name);
  if ("message" in found) return fail(new SdkFailure("load", found.message));
  const declaration = found.declaration;
  const ctx = createContext(start.execution, channel);
  watchFetchDenials(channel, logged);

  let outcome: Outcome<unknown>;
  if (declaration.kind === "workflow") {
    const params = validateParams(declaration.meta.params, start.params);
    if (!params.ok) {
      const list = params.errors.map((error) => error.message).join("; ");
      return fail(new SdkFailure("invalid_params", `params are not valid: ${list}`));
    }
    const handler = declaration.handler as (params: unknown, ctx: unknown) => unknown;
    outcome = await guard(() => handler(params.value, ctx));
  } else {
    outcome = await guard(() => declaration.handler(ctx, start.params ?? {}));
  }
  if ("stalled" in outcome || "late" in outcome) {
    return fail(
      new SdkFailure(
        "error",
        `${name} never finished: it awaits a promise that nothing will ever settle (a missing resolve() or a forgotten callback?)`,
      ),
    );
  }
  if ("error" in outcome) return fail(outcome.error);
  const checked =
    declaration.kind === "workflow" ? checkResult(outcome.value) : checkOptions(outcome.value);
  if ("problem" in checked) return fail(new SdkFailure("invalid_result", checked.problem));
  const result = { type: "result" as const, value: checked.value };
  const bytes = channel.lineBytes(result);
  if (bytes > 1024 * 1024) {
    return fail(
      new SdkFailure(
        "invalid_result",
        `the result is ${bytes} bytes as JSON; at most 1 MiB can be returned: store large data elsewhere and return a reference`,
      ),
    );
  }
  return channel.complete(result);
}

/** Loads every module, reports what each declares, and the modules that failed to load. */
export function __bifrostDiscover(options: DiscoverOptions): void {
  void discover(options).catch(crash);
}

async function discover(options: DiscoverOptions): Promise<never> {
  const channel = await openChannel();
  const discovery = createDiscovery();
  let current: string | undefined;
  const late = (reason: unknown) => {
    if (current) discovery.fail(current, `unhandled error while loading: ${describeError(reason)}`);
  };
  onGlobal("unhandledrejection", (event) => {
    event.preventDefault();
    late(event.reason);
  });
  onGlobal("error", (event) => {
    event.preventDefault();
    late(event.error);
  });
  listenForStalls();
  if (channel.start.mode !== "discover") {
    return failWith(
      channel,
      new SdkFailure("internal", "the runner started a run but entry.js called __bifrostDiscover"),
      new Set(),
    );
  }
  const deadline = options.moduleTimeoutMs ?? 10_000;
  for (const [module, load] of Object.entries(options.modules)) {
    current = module;
    const loaded = await guard(load, deadline);
    if ("stalled" in loaded) {
      discovery.fail(
        module,
        "never finished loading: a top-level await waits for something that can never happen",
      );
    } else if ("late" in loaded) {
      discovery.fail(
        module,
        `did not finish loading within ${deadline} ms (a top-level await that never settles?)`,
      );
    } else if ("error" in loaded) {
      discovery.fail(module, describeError(loaded.error));
    } else {
      discovery.add(module, loaded.value);
    }
  }
  current = undefined;
  return channel.complete({ type: "discovered", ...discovery.report() });
}

/** One line for a load failure: a permission denial's message, else "Name: message". */
function describeError(error: unknown): string {
  const denial = findPermissionDenial(error);
  if (denial) return denial.message;
  if (!(error instanceof Error)) return `threw a non-Error value: ${String(error)}`;
  const message = error.message.length > 4000 ? `${error.message.slice(0, 4000)}…` : error.message;
  return /^\w*Error: /.test(message) ? message : `${error.name}: ${message}`;
}

function crash(error: unknown): void {
  printError(
    `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  deno().exit(1);
}
