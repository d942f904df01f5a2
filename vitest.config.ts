import { defineConfig } from "vitest/config";

// Two projects: unit tests (pure logic, no services) and integration tests that talk to the
// real PostgreSQL, Redis (and later NATS, Deno) started by scripts/services.sh.
export default defineConfig({
  test: {
    // Sentence-style names, no retries: a flaky test is a bug to fix, not to hide.
    retry: 0,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["*/src/**/*.test.ts"],
          exclude: ["**/*.integration.test.ts", "**/node_modules/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["*/src/**/*.integration.test.ts"],
          // The SDK is built first: runner and SDK tests spawn Deno on sdk/dist.
          globalSetup: [
            "sdk/src/testing/build-sdk.ts",
            "control-plane/src/testing/global-setup.ts",
          ],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
