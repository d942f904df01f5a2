import { describe, expect, test } from "vitest";
import { defaultCapacity, loadRunnerConfig } from "./config.js";

const required = { BIFROST_RUNNER_KEY: "bfk_test" };

const gib = 1024 ** 3;

describe("runner configuration", () => {
  test("a sandbox uid of the operator's choosing, never root; unset means the default", () => {
    expect(loadRunnerConfig(required).sandboxUid).toBeUndefined();
    expect(loadRunnerConfig({ ...required, BIFROST_RUNNER_SANDBOX_UID: "64123" }).sandboxUid).toBe(
      64123,
    );
    expect(() => loadRunnerConfig({ ...required, BIFROST_RUNNER_SANDBOX_UID: "0" })).toThrow(
      /BIFROST_RUNNER_SANDBOX_UID: must not be 0 \(root\) \(got "0"\)/,
    );
    expect(() => loadRunnerConfig({ ...required, BIFROST_RUNNER_SANDBOX_UID: "nobody" })).toThrow(
      /BIFROST_RUNNER_SANDBOX_UID: .*\(got "nobody"\)/,
    );
  });

  test("capacity defaults to two slots per CPU, bounded by what the memory holds", () => {
    // This VM: 2 CPUs, 24 GiB.
    expect(defaultCapacity({ cpus: 2, memoryBytes: 24 * gib })).toBe(4);
    // Memory-bound: ¾ of 8 GiB holds 12 sandboxes at their 512 MiB limit.
    expect(defaultCapacity({ cpus: 16, memoryBytes: 8 * gib })).toBe(12);
    // Never none, never more than the variable allows.
    expect(defaultCapacity({ cpus: 1, memoryBytes: 0.5 * gib })).toBe(1);
    expect(defaultCapacity({ cpus: 512, memoryBytes: 4096 * gib })).toBe(256);
    const machine = { cpus: 3, memoryBytes: 64 * gib };
    expect(loadRunnerConfig(required, machine)).toMatchObject({
      capacity: 6,
      preparedSandboxes: 6,
    });
    expect(loadRunnerConfig({ ...required, BIFROST_RUNNER_CAPACITY: "2" }, machine).capacity).toBe(
      2,
    );
  });

  test("prepared sandboxes default to one per slot, and 0 turns them off", () => {
    expect(loadRunnerConfig({ ...required, BIFROST_RUNNER_CAPACITY: "3" }).preparedSandboxes).toBe(
      3,
    );
    expect(
      loadRunnerConfig({ ...required, BIFROST_RUNNER_PREPARED_SANDBOXES: "0" }).preparedSandboxes,
    ).toBe(0);
  });

  test("metrics are served on loopback by default, on any host:port asked for, or not at all", () => {
    expect(loadRunnerConfig(required).metricsListen).toBe("127.0.0.1:9465");
    expect(
      loadRunnerConfig({ ...required, BIFROST_RUNNER_METRICS_LISTEN: "0.0.0.0:9100" })
        .metricsListen,
    ).toBe("0.0.0.0:9100");
    expect(
      loadRunnerConfig({ ...required, BIFROST_RUNNER_METRICS_LISTEN: "[::1]:9100" }).metricsListen,
    ).toBe("[::1]:9100");
    expect(
      loadRunnerConfig({ ...required, BIFROST_RUNNER_METRICS_LISTEN: "off" }).metricsListen,
    ).toBeNull();
    for (const bad of ["9465", "localhost:", "localhost:70000", "a b:1", "on"]) {
      expect(() => loadRunnerConfig({ ...required, BIFROST_RUNNER_METRICS_LISTEN: bad })).toThrow(
        `BIFROST_RUNNER_METRICS_LISTEN: must be host:port (e.g. 127.0.0.1:9465, [::1]:9465, 0.0.0.0:9465) or "off" (got ${JSON.stringify(bad)})`,
      );
    }
  });

  test("a bad variable's value is named, but never the runner key's or the NATS URL's", () => {
    expect(() =>
      loadRunnerConfig({
        BIFROST_RUNNER_KEY: "",
        BIFROST_NATS_URL: "http://user:hunter2@nats",
        BIFROST_RUNNER_CAPACITY: "zero",
      }),
    ).toThrow(/BIFROST_RUNNER_CAPACITY: .*\(got "zero"\)/);
    try {
      loadRunnerConfig({ BIFROST_RUNNER_KEY: "", BIFROST_NATS_URL: "http://user:hunter2@nats" });
    } catch (error) {
      expect((error as Error).message).toContain("BIFROST_NATS_URL");
      expect((error as Error).message).not.toContain("hunter2");
    }
  });

  test("every bad variable is named at once", () => {
    expect(() =>
      loadRunnerConfig({
        BIFROST_RUNNER_CAPACITY: "0",
        BIFROST_RUNNER_PREPARED_SANDBOXES: "-1",
      }),
    ).toThrow(
      /BIFROST_RUNNER_KEY: is required[\s\S]*BIFROST_RUNNER_CAPACITY[\s\S]*BIFROST_RUNNER_PREPARED_SANDBOXES/,
    );
  });
});
