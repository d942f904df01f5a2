import type { Scope } from "@bifrost/proto";
import { status } from "@grpc/grpc-js";
import { expect } from "vitest";

/** The wire scope of the global scope. */
export const globalScope: Scope = { kind: { $case: "global", value: true } };

/** The wire scope of one organization. */
export const orgScope = (id: string): Scope => ({ kind: { $case: "organizationId", value: id } });

/** The gRPC status name a call ends with ("OK" when it succeeds). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "OK",
    (e: { code: status }) => status[e.code] as string,
  );
}

/** Asserts that a call fails with exactly this status and returns the error's message. */
export async function expectCode(promise: Promise<unknown>, code: status): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: { code: status; details: string }) => e,
  );
  expect(error, `expected gRPC status ${status[code]}`).toBeDefined();
  expect(status[(error as { code: status }).code]).toBe(status[code]);
  return (error as { details: string }).details;
}
