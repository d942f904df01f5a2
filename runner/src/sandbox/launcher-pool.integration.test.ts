import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findExecutable } from "./deno-binary.js";
import { createLauncherPool, type LauncherPool } from "./launcher-pool.js";
import {
  createResourceLimiter,
  defaultProcessLimits,
  launchLine,
  type ResourceLimiter,
  wrapLaunch,
} from "./resource-limits.js";

// The launcher pool and the cgroup pool against the real kernel: what a waiting launcher runs
// is exactly the words of its line, a spare is used once and replaced, and a reused cgroup
// starts with clean counters, the limits asked for and no task of the sandbox before.

const tools = {
  shPath: findExecutable("/bin/sh"),
  prlimitPath: findExecutable("prlimit"),
  setprivPath: findExecutable("setpriv"),
  hostUid: process.getuid?.() === 0 ? 65534 : null,
};
const printf = findExecutable("printf");
let limiter: ResourceLimiter;
let pool: LauncherPool;

beforeAll(async () => {
  limiter = await createResourceLimiter({ warn: () => {} });
  pool = createLauncherPool({
    tools,
    limiter,
    logger: { warn: () => {} },
    spares: 1,
    defaults: { limits: defaultProcessLimits, file: printf, fixedArgs: ["[%s]\\n"] },
  });
});

afterAll(async () => {
  await pool?.close();
});

async function output(child: import("node:child_process").ChildProcess): Promise<string> {
  let text = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  await new Promise((resolve) => child.once("close", resolve));
  return text;
}

describe("a waiting launcher", () => {
  test("runs its command with the line's words, none of them expanded by the shell", async () => {
    const launch = wrapLaunch(
      { ...tools, cgroupProcsFiles: [], limits: defaultProcessLimits, limitTasksByRlimit: false },
      printf,
      ["[%s]\\n"],
    );
    const child = spawn(launch.file, launch.args, { env: {}, stdio: ["pipe", "pipe", "inherit"] });
    const printed = output(child);
    child.stdin.end(launchLine(["$(id)", "*", "`id`;ls", "$HOME", "'quoted'"]));
    expect(await printed).toBe("[$(id)]\n[*]\n[`id`;ls]\n[$HOME]\n['quoted']\n");
  });

  test("that gets no line (the runner went away) ends without running anything", async () => {
    const launch = wrapLaunch(
      { ...tools, cgroupProcsFiles: [], limits: defaultProcessLimits, limitTasksByRlimit: false },
      printf,
      ["ran"],
    );
    const child = spawn(launch.file, launch.args, { env: {}, stdio: ["pipe", "pipe", "inherit"] });
    const printed = output(child);
    child.stdin.end();
    expect(await printed).toBe("");
    expect(child.exitCode).toBe(125);
  });
});

describe("the launcher pool", () => {
  test("hands out a waiting spare once, already in its cgroup, and prepares the next", async () => {
    for (let i = 0; i < 100 && pool.waiting().length === 0; i++) await sleep(20);
    const [spare] = pool.waiting();
    const first = await pool.take(defaultProcessLimits, printf, ["[%s]\\n"]);
    expect(first).toBe(spare);
    // The spare joins its cgroup while it waits, before it is needed.
    const pid = String(first.child.pid);
    for (const file of first.cgroup.procsFiles) {
      for (let i = 0; i < 100 && !(await readFile(file, "utf8")).split("\n").includes(pid); i++) {
        await sleep(10);
      }
      expect((await readFile(file, "utf8")).split("\n")).toContain(pid);
    }
    const printed = output(first.child);
    first.start(["one"]);
    expect(await printed).toBe("[one]\n");
    await pool.finish(first);

    const second = await pool.take(defaultProcessLimits, printf, ["[%s]\\n"]);
    expect(second.child.pid).not.toBe(first.child.pid);
    const again = output(second.child);
    second.start(["two"]);
    expect(await again).toBe("[two]\n");
    await pool.finish(second);
  });

  test("a spare that died while waiting is never handed out", async () => {
    for (let i = 0; i < 100 && pool.waiting().length === 0; i++) await sleep(20);
    const [spare] = pool.waiting();
    if (!spare) throw new Error("no spare came up");
    process.kill(spare.child.pid as number, "SIGKILL");
    await new Promise((resolve) => spare.child.once("exit", resolve));
    const next = await pool.take(defaultProcessLimits, printf, ["[%s]\\n"]);
    expect(next).not.toBe(spare);
    expect(next.exited).toBe(false);
    const printed = output(next.child);
    next.start(["fresh"]);
    expect(await printed).toBe("[fresh]\n");
    await pool.finish(next);
  });

  test("another kind (other limits or command) gets a launcher of its own", async () => {
    const limits = { ...defaultProcessLimits, openFiles: 77 };
    const launcher = await pool.take(limits, findExecutable("sh"), ["-c", "ulimit -n"]);
    const printed = output(launcher.child);
    launcher.start([]);
    expect((await printed).trim()).toBe("77");
    await pool.finish(launcher);
  });
});

describe("the cgroup pool", () => {
  test("a pooled cgroup removed while idle (another runner's sweep) is replaced, not handed out", async () => {
    // A limiter of its own: no launcher pool refills from it meanwhile.
    const own = await createResourceLimiter({ warn: () => {} });
    const cgroup = await own.acquire(defaultProcessLimits);
    await own.release(cgroup);
    await cgroup.remove();
    const next = await own.acquire(defaultProcessLimits);
    if (cgroup.procsFiles.length > 0) expect(next.procsFiles).not.toEqual(cgroup.procsFiles);
    for (const file of next.procsFiles) await expect(readFile(file, "utf8")).resolves.toBe("");
    await own.release(next);
    await own.close();
  });

  test("a reused cgroup has the new limits, zeroed counters and none of the old tasks", async () => {
    if (!limiter.pidsCgroup) return;
    const cgroup = await limiter.acquire({ ...defaultProcessLimits, tasks: 3 });
    // A fork bomb in the cgroup: it hits pids.max, and its tasks outlive the shell.
    const bomb = spawn(
      tools.shPath,
      [
        "-c",
        'for f in "$@"; do echo $$ > "$f"; done; for i in 1 2 3 4 5 6; do sleep 30 & done; wait',
        "bomb",
        ...cgroup.procsFiles,
      ],
      { stdio: "ignore" },
    );
    await sleep(300);
    expect(await cgroup.tasksLimitReached()).toBe(true);
    bomb.kill("SIGKILL");
    await limiter.release(cgroup);

    const reused = await limiter.acquire({ ...defaultProcessLimits, tasks: 50 });
    expect(reused.procsFiles).toEqual(cgroup.procsFiles);
    expect(await reused.tasksLimitReached()).toBe(false);
    for (const file of reused.procsFiles) expect((await readFile(file, "utf8")).trim()).toBe("");
    const pidsMax = reused.procsFiles.find((file) => file.includes("/pids/"));
    if (pidsMax) {
      expect((await readFile(pidsMax.replace("cgroup.procs", "pids.max"), "utf8")).trim()).toBe(
        "50",
      );
    }
    await limiter.release(reused);
  });
});
