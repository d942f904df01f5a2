import { describe, expect, test } from "vitest";
import { loadRunnerConfig } from "./config.js";

const required = { BIFROST_RUNNER_KEY: "bfk_test" };

describe("runner configuration", () => {
  test("prepared sandboxes default to one per slot, and 0 turns them off", () => {
    expect(loadRunnerConfig({ ...required, BIFROST_RUNNER_CAPACITY: "3" }).preparedSandboxes).toBe(
      3,
    );
    expect(
      loadRunnerConfig({ ...required, BIFROST_RUNNER_PREPARED_SANDBOXES: "0" }).preparedSandboxes,
    ).toBe(0);
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
