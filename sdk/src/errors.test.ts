import { describe, expect, it } from "vitest";
import {
  findPermissionDenial,
  RetryableError,
  SdkFailure,
  toFailure,
  UserError,
} from "./errors.js";

class NotCapable extends Error {
  override name = "NotCapable";
}

describe("toFailure", () => {
  it("classifies UserError as user, RetryableError as retryable, anything else as error", () => {
    expect(toFailure(new UserError("no mailbox"))).toMatchObject({
      kind: "user",
      name: "UserError",
      message: "no mailbox",
      retryable: false,
    });
    expect(toFailure(new RetryableError("503"))).toMatchObject({
      kind: "error",
      name: "RetryableError",
      retryable: true,
    });
    expect(toFailure(new RangeError("too big"))).toMatchObject({
      kind: "error",
      name: "RangeError",
      retryable: false,
    });
    expect(toFailure(new SdkFailure("invalid_result", "result.x is a Date"))).toMatchObject({
      kind: "invalid_result",
    });
  });

  it("describes thrown values that are not errors", () => {
    expect(toFailure({ code: 42 })).toMatchObject({
      name: "Error",
      message: 'the workflow threw a non-Error value: {"code":42}',
      stack: "",
    });
    expect(toFailure(undefined).message).toBe("the workflow threw a non-Error value: undefined");
  });

  it("keeps the stack and caps long messages", () => {
    const failure = toFailure(new Error("x".repeat(10_000)));
    expect(failure.stack).toContain("errors.test.ts");
    expect(failure.message).toMatch(/^x{8192}… \(1808 more characters\)$/);
  });
});

describe("permission denials", () => {
  it("map NotCapable for an undeclared host to one message naming the host", () => {
    const denial = new NotCapable(
      'Requires net access to "api.halo.example:443", run again with the --allow-net flag',
    );
    expect(toFailure(denial)).toMatchObject({
      kind: "permission",
      name: "PermissionDenied",
      message:
        'permission denied: net access to "api.halo.example:443" — declare the host in the workflow\'s network list',
    });
  });

  it("find fetch's denial in the cause of its TypeError", () => {
    const cause = new Error(
      'error sending request for url (http://10.0.0.5/): client error (Connect): Requires net access to "10.0.0.5:80", run again with the --allow-net flag',
    );
    const error = new TypeError("fetch failed", { cause });
    expect(findPermissionDenial(error)).toEqual({
      permission: "net",
      target: '"10.0.0.5:80"',
      message:
        'permission denied: net access to "10.0.0.5:80" — loopback, private and link-local addresses are never reachable from a workflow',
    });
  });

  it("give module loading and other permissions their own hints", () => {
    const read = new TypeError(
      'Requires read access to "/etc/hosts", run again with the --allow-read flag',
    );
    expect(toFailure(read).message).toBe(
      'permission denied: read access to "/etc/hosts" — workflows cannot read files; use config, secrets or variables',
    );
    const env = new NotCapable(
      'Requires env access to "HOME", run again with the --allow-env flag',
    );
    expect(toFailure(env).message).toBe(
      'permission denied: env access to "HOME" — workflows cannot read environment variables; use config or secrets',
    );
    const run = new NotCapable('Requires run access to "ls", run again with the --allow-run flag');
    expect(toFailure(run).message).toBe(
      'permission denied: run access to "ls" — workflows cannot run programs or use system APIs',
    );
  });

  it("are found through a workflow's own wrapping error", () => {
    const wrapped = new Error("halo unreachable", {
      cause: new NotCapable('Requires net access to "halo.example:443"'),
    });
    expect(toFailure(wrapped).kind).toBe("permission");
    expect(findPermissionDenial(new Error("Requires nothing"))).toBeUndefined();
  });
});
