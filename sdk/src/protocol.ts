// @ts-self-types="./protocol.d.ts"

import type { DataProviderMeta, JsonValue, WorkflowMeta } from "./meta.js";

/**
 * The SDK channel of docs/execution-contract.md: newline-delimited JSON over the execution's
 * Unix socket. These types are the single description of every message, used by the SDK
 * (Deno side) and by the local runner's server (Node side, the same role as the runner).
 */

/** Longest line either side may send, in bytes (newline excluded). */
export const maxMessageBytes = 1024 * 1024;

/** Exit code of the sandboxed process when the runner refuses its token. */
export const refusedExitCode = 3;

/** Who started an execution: a user (id and email set) or the platform (schedule, webhook). */
export interface StartedBy {
  id: string | null;
  name: string;
  email: string | null;
}

/** What the runner tells the SDK about the execution it runs. */
export interface ExecutionInfo {
  id: string;
  organization: { id: string; name: string };
  startedBy: StartedBy;
  /** The name of the workflow (or data provider) being run. */
  workflow: string;
}

/** SDK → runner, first line. */
export interface HelloMessage {
  type: "hello";
  token: string;
}

/** Runner → SDK, the reply to hello. */
export type StartMessage =
  | { type: "start"; mode: "run"; execution: ExecutionInfo; params: Record<string, JsonValue> }
  | { type: "start"; mode: "discover" }
  | { type: "refused"; message: string };

/** The methods of `call` and what each takes and returns. */
export interface CallMethods {
  "config.get": { params: { key: string }; result: { found: boolean; value?: JsonValue } };
  "secrets.get": { params: { name: string }; result: { found: boolean; value?: JsonValue } };
  "variables.get": { params: { name: string }; result: { found: boolean; value?: JsonValue } };
  "variables.set": { params: { name: string; value: JsonValue }; result: Record<string, never> };
}

export type CallMethod = keyof CallMethods;

/** SDK → runner, a request answered by exactly one reply with the same id. */
export interface CallMessage {
  type: "call";
  id: number;
  method: CallMethod;
  params: JsonValue;
}

/** Runner → SDK, the answer to a call. */
export type ReplyMessage =
  | { type: "reply"; id: number; result: JsonValue }
  | { type: "reply"; id: number; error: { name: string; message: string } };

export type LogLevel = "debug" | "info" | "warning" | "error";

/** SDK → runner notifications (no reply). */
export type NotificationMessage =
  | { type: "log"; level: LogLevel; message: string; data?: JsonValue }
  | { type: "checkpoint"; name: string; data: JsonValue };

/**
 * What failed, for the runner and the people reading the execution:
 * - user: the workflow threw UserError; its message is meant for end users;
 * - error: the workflow threw anything else (RetryableError included, with retryable: true);
 * - permission: the sandbox denied something (a host not in `network`, a file read, …);
 * - invalid_result: the handler returned something that is not JSON (the message names it);
 * - invalid_params: the params do not match the declaration (checked again in the sandbox);
 * - load: the module failed to load, or does not declare the workflow asked for;
 * - internal: the SDK or the channel failed.
 */
export type FailureKind =
  | "user"
  | "error"
  | "permission"
  | "invalid_result"
  | "invalid_params"
  | "load"
  | "internal";

/** A failure as it crosses the sandbox boundary. */
export interface FailureInfo {
  name: string;
  message: string;
  stack: string;
  retryable: boolean;
  kind: FailureKind;
}

/** An error of discovery: a module that failed to load or declares something invalid. */
export interface DiscoveryError {
  module: string;
  message: string;
}

/** SDK → runner, exactly one per process. */
export type CompletionMessage =
  | { type: "result"; value: JsonValue }
  | { type: "failure"; error: FailureInfo }
  | {
      type: "discovered";
      workflows: WorkflowMeta[];
      dataProviders: DataProviderMeta[];
      errors: DiscoveryError[];
    };

/** Every message the SDK sends. */
export type SdkMessage = HelloMessage | CallMessage | NotificationMessage | CompletionMessage;

/** Every message the runner sends. */
export type RunnerMessage = StartMessage | ReplyMessage;
