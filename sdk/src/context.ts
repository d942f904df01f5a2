// @ts-self-types="./context.d.ts"

import { UserError } from "./errors.js";
import { describeJsonProblem, findNonJson, toLoggable } from "./json-check.js";
import type { JsonValue } from "./meta.js";
import type {
  CallMethod,
  CallMethods,
  ExecutionInfo,
  LogLevel,
  NotificationMessage,
  StartedBy,
} from "./protocol.js";

/**
 * The context a handler receives as its second argument. Every call goes over the SDK channel
 * to the runner, which answers with the execution token's organization: config and secrets
 * follow the organization → global cascade there, not here.
 */

/** Structured log lines, streamed live to the execution's log. */
export interface Logger {
  debug(message: string, data?: unknown): void;
  info(message: string, data?: unknown): void;
  warning(message: string, data?: unknown): void;
  error(message: string, data?: unknown): void;
}

type Widen<T> = T extends string
  ? string
  : T extends number
    ? number
    : T extends boolean
      ? boolean
      : T;

/** Read-only configuration of the organization (falling back to global values). */
export interface ConfigReader {
  /** The value of `key`, or undefined when neither the organization nor global sets it. */
  get<T extends JsonValue = JsonValue>(key: string): Promise<T | undefined>;
  /** The value of `key`, or `options.default` when it is not set. */
  get<T extends JsonValue>(key: string, options: { default: T }): Promise<Widen<T>>;
}

/** Secrets of the organization (falling back to global ones). Values are redacted from logs. */
export interface SecretReader {
  /** The secret's value; throws UserError naming it when it is not set. */
  get(name: string): Promise<string>;
}

/** Variables of this execution: kept with it, shown with its result. */
export interface Variables {
  get<T extends JsonValue = JsonValue>(name: string): Promise<T | undefined>;
  set(name: string, value: JsonValue): Promise<void>;
}

/** What a workflow or data provider handler receives besides its params. */
export interface Context {
  readonly organization: { readonly id: string; readonly name: string };
  readonly executionId: string;
  readonly startedBy: Readonly<StartedBy>;
  /** The name of the workflow (or data provider) running. */
  readonly workflow: string;
  readonly log: Logger;
  /** Records progress with JSON data, kept with the execution. */
  checkpoint(name: string, data?: JsonValue): void;
  readonly variables: Variables;
  readonly config: ConfigReader;
  readonly secrets: SecretReader;
}

/** The two things a context needs from the channel. */
export interface ContextPort {
  call<M extends CallMethod>(
    method: M,
    params: CallMethods[M]["params"],
  ): Promise<CallMethods[M]["result"]>;
  notify(message: NotificationMessage): void;
}

/** Builds the context of one execution over a channel. */
export function createContext(execution: ExecutionInfo, port: ContextPort): Context {
  const log = (level: LogLevel) => (message: string, data?: unknown) => {
    const loggable = data === undefined ? undefined : toLoggable(data);
    port.notify({
      type: "log",
      level,
      message: typeof message === "string" ? message : String(message),
      ...(loggable === undefined ? {} : { data: loggable }),
    });
  };
  const requireName = (what: string, name: unknown): string => {
    if (typeof name !== "string" || name === "")
      throw new TypeError(`${what} must be a non-empty string`);
    return name;
  };
  const requireJson = (value: unknown, root: string, advice: string): JsonValue => {
    const problem = findNonJson(value, root);
    if (problem) throw new TypeError(describeJsonProblem(problem, advice));
    return value as JsonValue;
  };

  return Object.freeze({
    organization: Object.freeze({ ...execution.organization }),
    executionId: execution.id,
    startedBy: Object.freeze({ ...execution.startedBy }),
    workflow: execution.workflow,
    log: Object.freeze({
      debug: log("debug"),
      info: log("info"),
      warning: log("warning"),
      error: log("error"),
    }),
    checkpoint(name: string, data: JsonValue = null): void {
      requireName("checkpoint name", name);
      port.notify({
        type: "checkpoint",
        name,
        data: requireJson(data, "data", "checkpoints hold JSON"),
      });
    },
    variables: Object.freeze({
      async get<T extends JsonValue = JsonValue>(name: string): Promise<T | undefined> {
        const reply = await port.call("variables.get", {
          name: requireName("variable name", name),
        });
        return reply.found ? (reply.value as T) : undefined;
      },
      async set(name: string, value: JsonValue): Promise<void> {
        requireName("variable name", name);
        await port.call("variables.set", {
          name,
          value: requireJson(value, "value", "variables hold JSON"),
        });
      },
    }),
    config: Object.freeze({
      async get(key: string, options?: { default: JsonValue }): Promise<JsonValue | undefined> {
        const reply = await port.call("config.get", { key: requireName("config key", key) });
        return reply.found ? (reply.value ?? null) : options?.default;
      },
    }) as ConfigReader,
    secrets: Object.freeze({
      async get(name: string): Promise<string> {
        const reply = await port.call("secrets.get", { name: requireName("secret name", name) });
        if (!reply.found) {
          throw new UserError(
            `secret ${JSON.stringify(name)} is not set for this organization or globally`,
          );
        }
        return typeof reply.value === "string" ? reply.value : JSON.stringify(reply.value);
      },
    }),
  });
}
