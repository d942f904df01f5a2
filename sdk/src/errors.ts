// @ts-self-types="./errors.d.ts"

import { toLoggable } from "./json-check.js";
import type { FailureInfo, FailureKind } from "./protocol.js";

/**
 * The errors workflow code throws, and how anything thrown becomes the FailureInfo that
 * crosses the sandbox boundary as data. Runtime-neutral: permission denials are recognised by
 * Deno's message ("Requires net access to …"), which every denial carries whatever its class
 * (NotCapable, TypeError, or a plain Error as the cause of fetch's TypeError), so this file
 * also loads (and is unit-tested) in Node.
 */

/**
 * A failure whose message is meant for the people who started the workflow ("no mailbox for
 * a@b.c"). Not retried.
 */
export class UserError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UserError";
  }
}

/** A transient failure (a 503, a rate limit): the platform may run the workflow again. */
export class RetryableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RetryableError";
  }
}

/** A failure the SDK itself raises, with its kind (invalid_result, invalid_params, load, …). */
export class SdkFailure extends Error {
  readonly kind: FailureKind;

  constructor(kind: FailureKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = kind === "internal" ? "InternalError" : "WorkflowFailure";
    this.kind = kind;
  }
}

/** A permission the sandbox denied: which, to what, and the message shown for it. */
export interface PermissionDenial {
  /** Deno's permission name: net, read, write, env, run, ffi, sys, import. */
  permission: string;
  /** What was asked for, as Deno quotes it ("api.example.com:443", "/etc/hosts"). */
  target: string;
  message: string;
}

const denialPattern = /Requires (\w+) access to (.+?)(?:, run again with the --[\w-]+ flag)?\.?$/m;

/**
 * Finds a sandbox permission denial in an error or its causes: Deno.errors.NotCapable from
 * runtime APIs, TypeError("Requires read access …") from module loading, and fetch's
 * TypeError("fetch failed") whose cause is an Error saying "… Requires net access to …" (a
 * host allowed by name that resolved to a denied address).
 */
export function findPermissionDenial(error: unknown): PermissionDenial | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const match = denialPattern.exec(current.message);
    if (match?.[1] && match[2]) return describeDenial(match[1], match[2]);
    current = current.cause;
  }
  return undefined;
}

function describeDenial(permission: string, target: string): PermissionDenial {
  const host = target.replace(/^"|"$/g, "").replace(/:\d+$/, "");
  const hints: Record<string, string> = {
    net: isPrivateHost(host)
      ? "loopback, private and link-local addresses are never reachable from a workflow"
      : "declare the host in the workflow's network list",
    read: "workflows cannot read files; use config, secrets or variables",
    write: "workflows cannot write files; use variables or return the data",
    env: "workflows cannot read environment variables; use config or secrets",
    import: "workflows can import only modules of the workspace",
  };
  const hint = hints[permission] ?? "workflows cannot run programs or use system APIs";
  return {
    permission,
    target,
    message: `permission denied: ${permission} access to ${target} — ${hint}`,
  };
}

function isPrivateHost(host: string): boolean {
  if (host === "localhost" || host.endsWith(".localhost") || host.startsWith("[")) return true;
  const octets = host.split(".").map(Number);
  if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet))) return false;
  const [a = 0, b = 0] = octets;
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    a >= 224 ||
    (a === 100 && b >= 64 && b < 128) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b < 32) ||
    (a === 192 && b === 168) ||
    (a === 198 && (b === 18 || b === 19))
  );
}

const maxMessageChars = 8 * 1024;
const maxStackChars = 16 * 1024;

/**
 * Turns anything thrown into the FailureInfo of the contract. UserError → kind user;
 * RetryableError → kind error, retryable; a permission denial anywhere in the cause chain →
 * kind permission with one clear message; SdkFailure keeps its kind; the rest → kind error.
 */
export function toFailure(thrown: unknown): FailureInfo {
  const denial = findPermissionDenial(thrown);
  if (!(thrown instanceof Error)) {
    const shown = JSON.stringify(toLoggable(thrown)) ?? String(thrown);
    return failure("Error", `the workflow threw a non-Error value: ${shown}`, "", "error", false);
  }
  const stack = typeof thrown.stack === "string" ? thrown.stack : "";
  if (denial) return failure("PermissionDenied", denial.message, stack, "permission", false);
  if (thrown instanceof UserError)
    return failure(thrown.name, thrown.message, stack, "user", false);
  if (thrown instanceof RetryableError)
    return failure(thrown.name, thrown.message, stack, "error", true);
  if (thrown instanceof SdkFailure)
    return failure(thrown.name, thrown.message, stack, thrown.kind, false);
  return failure(thrown.name || "Error", thrown.message, stack, "error", false);
}

function failure(
  name: string,
  message: string,
  stack: string,
  kind: FailureKind,
  retryable: boolean,
): FailureInfo {
  return {
    name,
    message: truncate(message, maxMessageChars),
    stack: truncate(stack, maxStackChars),
    retryable,
    kind,
  };
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}
