import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  createSandboxFixture,
  type SandboxFixture,
  sandboxHostWarnings,
} from "../testing/sandbox-fixture.js";

// The resource probes of research/deno-sandbox.md §0/§2 against the real sandbox: SIGTERM
// traps and endless loops, heap, ArrayBuffer and Worker bombs, output floods, cancellation.

const mb = 1024 * 1024;
let fixture: SandboxFixture;

beforeAll(async () => {
  fixture = await createSandboxFixture();
});

afterAll(async () => {
  await fixture?.cleanup();
});

describe.concurrent("the sandbox's limits", () => {
  test("this host enforces memory and task limits with cgroups (or the warnings say why not)", () => {
    const { limiter } = fixture.host;
    if (!limiter.memoryCgroup)
      expect(sandboxHostWarnings().join("\n")).toContain("no memory cgroup");
    if (!limiter.pidsCgroup) expect(sandboxHostWarnings().join("\n")).toContain("no pids cgroup");
  });

  test("a SIGTERM trap and an endless loop are SIGKILLed at the timeout", async () => {
    const result = await fixture.run({
      timeoutMs: 1500,
      entry: `Deno.addSignalListener("SIGTERM", () => console.log("ignoring SIGTERM"));
console.log("looping");
for (;;) {}`,
    });
    expect(result.stdout).toEqual(["looping"]);
    expect(result.outcome).toMatchObject({ timedOut: true, signal: "SIGKILL", exitCode: null });
    expect(result.outcome.cancelled).toBe(false);
  });

  test("a heap bomb ends with the V8 heap limit: out of memory, exit 133", async () => {
    const result = await fixture.run({
      heapLimitMb: 64,
      entry:
        "const keep = [];\nfor (;;) keep.push({ filler: new Array(1000).fill(Math.random()) });",
    });
    expect(result.outcome).toMatchObject({ outOfMemory: true, exitCode: 133, timedOut: false });
    expect(result.output).toContain("Reached heap limit");
  });

  test("an ArrayBuffer bomb (1 GB off the heap) is stopped by the memory cgroup", async () => {
    const result = await fixture.run({
      heapLimitMb: 64,
      limits: { memoryBytes: 256 * mb },
      entry: `const keep = [];
for (let i = 0; i < 1024; i++) { const b = new Uint8Array(${mb}); b.fill(1); keep.push(b); }
console.log("allocated 1 GB");`,
    });
    if (fixture.host.limiter.memoryCgroup) {
      expect(result.outcome).toMatchObject({ outOfMemory: true, exitCode: 137 });
      expect(result.stdout).not.toContain("allocated 1 GB");
    } else {
      // Without a memory cgroup only the heap is capped: the gap the warning names.
      expect(result.stdout).toContain("allocated 1 GB");
    }
  });

  test("a Worker bomb (1,000 Workers) runs into the task limit", async () => {
    const result = await fixture.run({
      limits: { tasks: 64 },
      entry: `const source = URL.createObjectURL(new Blob(["setInterval(() => {}, 1000)"], { type: "application/javascript" }));
let started = 0;
try {
  for (; started < 1000; started++) new Worker(source, { type: "module" });
  console.log("started all 1000");
} catch (e) {
  console.log("worker " + started + " failed: " + e.name + ": " + e.message);
}
Deno.exit(0);`,
    });
    expect(result.stdout.join("\n")).toMatch(
      /^worker \d+ failed: WouldBlock: Resource temporarily unavailable/,
    );
    expect(result.stdout).not.toContain("started all 1000");
    if (fixture.host.limiter.pidsCgroup) expect(result.outcome.tasksLimitReached).toBe(true);
  });

  test("a stdout flood is capped, reported as truncated and killed once it keeps coming", async () => {
    const result = await fixture.run({
      outputLimits: { maxLines: 100, maxBytes: 64 * 1024, maxLineBytes: 512, floodBytes: 4 * mb },
      entry: 'const line = "x".repeat(1000);\nfor (;;) console.log(line);',
    });
    expect(result.outcome).toMatchObject({
      outputTruncated: true,
      outputFlooded: true,
      signal: "SIGKILL",
      timedOut: false,
    });
    expect(result.stdout.length).toBeLessThanOrEqual(100);
    expect(result.stdout[0]).toMatch(/^x{512} …\[line truncated\]$/);
  });

  test("a printer that stays under the caps is neither truncated nor killed", async () => {
    const result = await fixture.run({
      entry: 'for (let i = 0; i < 1000; i++) console.log("line " + i);\nconsole.error("done");',
    });
    expect(result.stdout).toHaveLength(1000);
    expect(result.stderr).toEqual(["done"]);
    expect(result.outcome).toMatchObject({
      exitCode: 0,
      outputTruncated: false,
      outputFlooded: false,
    });
  });

  test("terminal escapes and control characters are stripped from output lines", async () => {
    const result = await fixture.run({
      entry: `console.log("\\x1b[31mred\\x1b[0m \\u0007bell \\u202Eevil");
Deno.stdout.writeSync(new TextEncoder().encode("no newline at the end"));`,
    });
    expect(result.stdout).toEqual(["red bell evil", "no newline at the end"]);
  });

  test("cancelling kills the process group and says so", async () => {
    const controller = new AbortController();
    const result = await fixture.run({
      signal: controller.signal,
      onLine: (line) => line === "started" && controller.abort(),
      entry: 'console.log("started");\nawait new Promise(() => setInterval(() => {}, 1000));',
    });
    expect(result.outcome).toMatchObject({ cancelled: true, timedOut: false, signal: "SIGKILL" });
  });

  test("an already-cancelled execution never starts", async () => {
    const result = await fixture.run({ signal: AbortSignal.abort(), entry: 'console.log("ran");' });
    expect(result.outcome.cancelled).toBe(true);
    expect(result.stdout).toEqual([]);
  });

  test("the workflow is its sandbox's pid 1: bubblewrap leaves no init behind to orphan", async () => {
    // With an init of its own, bubblewrap exits on the init's word without reaping it: each
    // run would leave a process for the host's pid 1 to reap, and a zombie per execution
    // where that pid 1 reaps nothing (a runner as pid 1 of a container).
    const result = await fixture.run({ entry: "console.log(Deno.pid, Deno.ppid);" });
    expect(result.outcome.exitCode).toBe(0);
    expect(result.stdout).toEqual(["1 0"]);
  });

  test("the exit code of the workflow process is passed through", async () => {
    const result = await fixture.run({ entry: "Deno.exit(7);" });
    expect(result.outcome).toMatchObject({ exitCode: 7, signal: null, outOfMemory: false });
  });
});
