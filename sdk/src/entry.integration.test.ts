import { rm } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { runEntrySource } from "./local/entry-source.js";
import { localImportMap } from "./local/local-run.js";
import { runDeno } from "./local/run-deno.js";
import {
  failureOf,
  resultOf,
  runFixture,
  temporaryWorkspace,
  testWorkspace,
} from "./testing/deno-harness.js";

// __bifrostRun in the real Deno binary, with the contract's flags, against a real channel
// server playing the runner.

const onboardConfig = {
  organization: { id: "org-a", name: "Contoso" },
  config: { "halo.url": "https://contoso.halo.example" },
  secrets: { "halo.secret": "s3cret" },
  variables: {},
};

describe("__bifrostRun", () => {
  it("runs a workflow that logs, checkpoints, reads config, secrets and variables and returns JSON", async () => {
    const fixture = await runFixture({
      module: "workflows/onboard.ts",
      target: { workflow: "onboard_user" },
      params: { email: "a@b.co", tags: ["x"] },
      config: onboardConfig,
    });
    expect(resultOf(fixture)).toMatchObject({
      greeting: "hello, a@b.co",
      count: 1,
      note: null,
      tags: ["x"],
      url: "https://contoso.halo.example",
      missing: "fallback",
      seen: { email: "a@b.co", at: 1 },
      organization: { id: "org-a", name: "Contoso" },
      startedBy: { id: null, name: "bifrost-local", email: null },
      workflow: "onboard_user",
    });
    expect(fixture.notifications).toEqual([
      { type: "log", level: "info", message: "onboarding", data: { email: "a@b.co", count: 1 } },
      { type: "log", level: "debug", message: "debug line" },
      { type: "checkpoint", name: "validated", data: { email: "a@b.co" } },
      { type: "log", level: "warning", message: "secret length", data: { length: 6 } },
    ]);
    const { transcript } = fixture.run;
    expect(transcript[0]).toEqual({ type: "hello", token: "…" });
    expect(
      transcript.filter((message) => message.type === "call").map((call) => call.method),
    ).toEqual(["config.get", "config.get", "secrets.get", "variables.set", "variables.get"]);
    expect(transcript.at(-1)?.type).toBe("result");
    expect(
      transcript.filter((message) => ["result", "failure"].includes(message.type)),
    ).toHaveLength(1);
    expect(fixture.run.exitCode).toBe(0);
    expect(fixture.run.violations).toEqual([]);
  });

  it("validates params again in the sandbox and applies defaults", async () => {
    const fixture = await runFixture({
      module: "workflows/onboard.ts",
      target: { workflow: "onboard_user" },
      params: { email: "not-an-address", count: 0 },
      config: onboardConfig,
    });
    expect(failureOf(fixture)).toMatchObject({
      kind: "invalid_params",
      retryable: false,
      message:
        'params are not valid: email must be an email address like name@example.com, got "not-an-address"; count must be at least 1, got 0',
    });
  });

  it("reports a UserError as a user failure, not retryable", async () => {
    const failure = failureOf(
      await runFixture({ module: "workflows/failing.ts", target: { workflow: "reject_user" } }),
    );
    expect(failure).toMatchObject({
      kind: "user",
      name: "UserError",
      message: "no mailbox for a@b.co",
      retryable: false,
    });
    expect(failure.stack).toContain("workflows/failing.ts");
  });

  it("reports a RetryableError as retryable and any other throw as an error", async () => {
    const retry = failureOf(
      await runFixture({ module: "workflows/failing.ts", target: { workflow: "retry_later" } }),
    );
    expect(retry).toMatchObject({ kind: "error", name: "RetryableError", retryable: true });
    const crash = failureOf(
      await runFixture({ module: "workflows/failing.ts", target: { workflow: "crash" } }),
    );
    expect(crash).toMatchObject({ kind: "error", name: "TypeError", retryable: false });
    const thrown = failureOf(
      await runFixture({ module: "workflows/failing.ts", target: { workflow: "throws_string" } }),
    );
    expect(thrown.message).toBe('the workflow threw a non-Error value: "oops"');
  });

  it.each([
    [
      "returns_date",
      "result.users[2].created is a Date; return JSON (convert it with date.toISOString())",
    ],
    ["returns_function", "result.callback is a function; return JSON"],
    ["returns_cycle", "result.node.self refers back to result.node, a cycle; return JSON"],
    ["returns_nan", "result.ratio is NaN; return JSON (JSON has no NaN or Infinity)"],
    ["returns_undefined_item", "result[1] is undefined; return JSON (use null)"],
  ])("fails %s with invalid_result naming the path", async (workflow, message) => {
    const failure = failureOf(
      await runFixture({ module: "workflows/invalid-results.ts", target: { workflow } }),
    );
    expect(failure).toMatchObject({ kind: "invalid_result", message, retryable: false });
  });

  it("returns null for a handler that returns nothing", async () => {
    expect(
      resultOf(
        await runFixture({
          module: "workflows/invalid-results.ts",
          target: { workflow: "returns_nothing" },
        }),
      ),
    ).toBeNull();
  });

  it("maps a fetch to an undeclared host to one permission failure, also logged", async () => {
    const fixture = await runFixture({
      module: "workflows/sandbox.ts",
      target: { workflow: "fetch_undeclared" },
    });
    const message =
      'permission denied: net access to "example.com:443" — declare the host in the workflow\'s network list';
    expect(failureOf(fixture)).toMatchObject({
      kind: "permission",
      name: "PermissionDenied",
      message,
    });
    expect(fixture.notifications).toContainEqual(
      expect.objectContaining({ type: "log", level: "error", message }),
    );
  });

  it("says loopback addresses are unreachable even when declared, and files unreadable", async () => {
    const loopback = failureOf(
      await runFixture({
        module: "workflows/sandbox.ts",
        target: { workflow: "loopback" },
        network: ["127.0.0.1"],
      }),
    );
    expect(loopback.message).toBe(
      'permission denied: net access to "127.0.0.1:8080" — loopback, private and link-local addresses are never reachable from a workflow',
    );
    const read = failureOf(
      await runFixture({ module: "workflows/sandbox.ts", target: { workflow: "read_file" } }),
    );
    expect(read).toMatchObject({ kind: "permission" });
    expect(read.message).toMatch(
      /^permission denied: read access to "\/etc\/hostname" — workflows cannot read files/,
    );
  });

  it("logs a permission denial the workflow catches", async () => {
    const fixture = await runFixture({
      module: "workflows/sandbox.ts",
      target: { workflow: "caught_denial" },
    });
    expect(resultOf(fixture)).toBe("done");
    expect(fixture.notifications.map((n) => (n.type === "log" ? n.message : n.name))).toEqual([
      'permission denied: net access to "example.com:443" — declare the host in the workflow\'s network list',
      "carrying on without example.com",
    ]);
  });

  it("fails a handler awaiting a promise nothing can settle at once instead of hanging", async () => {
    const failure = failureOf(
      await runFixture({ module: "workflows/sandbox.ts", target: { workflow: "never_settles" } }),
    );
    expect(failure).toMatchObject({ kind: "error" });
    expect(failure.message).toMatch(
      /^never_settles never finished: it awaits a promise that nothing will ever settle/,
    );
  });

  it("fails on an unhandled rejection with its error", async () => {
    const failure = failureOf(
      await runFixture({
        module: "workflows/sandbox.ts",
        target: { workflow: "unhandled_rejection" },
      }),
    );
    expect(failure).toMatchObject({ kind: "error", message: "forgotten promise failed" });
  });

  it("reports a workflow the module does not declare as a load failure listing what it does", async () => {
    const failure = failureOf(
      await runFixture({ module: "workflows/failing.ts", target: { workflow: "missing" } }),
    );
    expect(failure).toMatchObject({ kind: "load" });
    expect(failure.message).toBe(
      'workflows/failing.ts has no workflow named "missing"; it declares "crash", "reject_user", "retry_later", "throws_string"',
    );
  });

  it("reports a module that fails to load as a load failure with the reason", async () => {
    const root = await temporaryWorkspace({ "workflows/broken.ts": "export const x = ;\n" });
    const failure = failureOf(
      await runFixture({ root, module: "workflows/broken.ts", target: { workflow: "x" } }),
    );
    expect(failure).toMatchObject({ kind: "load", retryable: false });
    expect(failure.message).toMatch(
      /^workflows\/broken.ts failed to load: SyntaxError: Expression expected/,
    );
    await rm(root, { recursive: true, force: true });
  });

  it("runs a data provider and checks its options", async () => {
    const options = resultOf(
      await runFixture({
        module: "workflows/catalog.ts",
        target: { dataProvider: "clients" },
        config: { organization: { id: "org-b", name: "Fabrikam" } },
      }),
    );
    expect(options).toEqual([
      { label: "Contoso", value: "contoso", metadata: { org: "org-b" } },
      { label: "Fabrikam", value: "fabrikam" },
    ]);
    const bad = failureOf(
      await runFixture({ module: "workflows/catalog.ts", target: { dataProvider: "bad_options" } }),
    );
    expect(bad).toMatchObject({ kind: "invalid_result" });
    expect(bad.message).toMatch(/^result\[0\]\.label must be a string/);
  });

  it("passes a data provider the caller's inputs as its second argument ({} when none)", async () => {
    const root = await temporaryWorkspace({
      "providers/echo.ts": `import { dataProvider } from "bifrost";
export const echo = dataProvider({ name: "echo" }, (_ctx, inputs) => [{ label: "inputs", value: inputs }]);
`,
    });
    const target = { dataProvider: "echo" };
    const given = await runFixture({
      root,
      module: "providers/echo.ts",
      target,
      params: { q: "co" },
    });
    expect(resultOf(given)).toEqual([{ label: "inputs", value: { q: "co" } }]);
    const none = await runFixture({ root, module: "providers/echo.ts", target });
    expect(resultOf(none)).toEqual([{ label: "inputs", value: {} }]);
    await rm(root, { recursive: true, force: true });
  });

  it("exits with code 3 and no completion when the runner refuses the token", async () => {
    const workspace = testWorkspace();
    const run = await runDeno({
      deno: workspace.deno,
      importMap: await localImportMap(workspace),
      entry: runEntrySource(
        { module: "workflows/failing.ts", workflow: "crash" },
        `file://${workspace.root}/`,
      ),
      start: { mode: "discover" },
      handle: () => null,
      helloToken: "forged",
    });
    expect(run.exitCode).toBe(3);
    expect(run.completion).toBeUndefined();
    expect(run.stderr).toContain("the runner refused this process: invalid execution token");
  });
});
