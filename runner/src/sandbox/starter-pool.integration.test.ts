import { spawn, spawnSync } from "node:child_process";
import { readlinkSync } from "node:fs";
import { access, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findExecutable } from "./deno-binary.js";
import {
  createResourceLimiter,
  defaultProcessLimits,
  type ProcessLimits,
  type ResourceLimiter,
} from "./resource-limits.js";
import { createSandboxHost, starterDirsParent } from "./sandbox-process.js";
import {
  type LaunchRequest,
  prepareStarterDir,
  type SandboxStarter,
  type StarterRun,
  spawnStarter,
  writeStarterFileSync,
} from "./sandbox-starter.js";
import { createStarterPool, type StarterPool } from "./starter-pool.js";

// Starters and the cgroup pool against the real kernel: a starter forks exactly the words of
// its line, as the host uid with the rlimits asked for; consecutive sandboxes of one starter
// never see each other's output; an idle starter that died is never handed out; a reused
// cgroup starts with clean counters, the limits asked for and no task of the sandbox before.

const isRoot = process.getuid?.() === 0;
const tools = {
  shPath: findExecutable("/bin/sh"),
  setprivPath: findExecutable("setpriv"),
  hostUid: isRoot ? 65534 : null,
  unsharePath: isRoot ? findExecutable("unshare") : null,
};
const sh = findExecutable("sh");
const printf = findExecutable("printf");
let dir: string;
let limiter: ResourceLimiter;
let pool: StarterPool;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bifrost-starter-test-"));
  await prepareStarterDir(dir, tools.hostUid);
  writeStarterFileSync(join(dir, "empty"), "");
  limiter = await createResourceLimiter({ warn: () => {} });
  pool = createStarterPool({
    tools,
    limiter,
    logger: { warn: () => {} },
    dir,
    spares: 1,
    limits: defaultProcessLimits,
  });
});

afterAll(async () => {
  await pool?.close();
  await rm(dir, { recursive: true, force: true });
});

let scripts = 0;

/**
 * A shell script as a command: a line holds no whitespace, so the script is a file of the
 * starter's directory that the fork opens as fd 4, and `sh` reads it from there.
 */
async function script(text: string): Promise<{ argv: string[]; fd4File: string }> {
  const fd4File = `script-${++scripts}.sh`;
  writeStarterFileSync(join(dir, fd4File), text);
  return { argv: [sh, "/dev/fd/4"], fd4File };
}

/** Runs `argv` with a starter and collects what it printed, per stream, and its status. */
async function launch(
  starter: SandboxStarter,
  command: string[] | { argv: string[]; fd4File: string },
  limits: Partial<LaunchRequest["limits"]> = {},
  fd3File = "empty",
): Promise<{ stdout: Buffer; stderr: string; status: number | null; run: StarterRun }> {
  const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const { argv, fd4File } = Array.isArray(command) ? { argv: command, fd4File: "empty" } : command;
  const run = starter.launch(
    {
      fd3File,
      fd4File,
      limits: { openFiles: 1024, fileSizeBytes: 1 << 20, tasks: null, ...limits },
      argv,
    },
    { onData: (stream, chunk) => chunks[stream].push(chunk), onEnd: () => {} },
  );
  const { status } = await run.done;
  return {
    stdout: Buffer.concat(chunks.stdout),
    stderr: Buffer.concat(chunks.stderr).toString(),
    status,
    run,
  };
}

async function takeAndRun(
  command: Parameters<typeof launch>[1],
  limits?: Partial<LaunchRequest["limits"]>,
  fd3File?: string,
) {
  const starter = await pool.take(defaultProcessLimits);
  try {
    return { starter, ...(await launch(starter, command, limits, fd3File)) };
  } finally {
    await pool.finish(starter);
  }
}

describe("a starter", () => {
  test("forks its command with the line's words, none of them expanded by the shell", async () => {
    const { stdout, status } = await takeAndRun([
      printf,
      "[%s]\\n",
      "$(id)",
      "*",
      "`id`;ls",
      "$HOME",
      "'quoted'",
    ]);
    expect(status).toBe(0);
    expect(stdout.toString()).toBe("[$(id)]\n[*]\n[`id`;ls]\n[$HOME]\n['quoted']\n");
  });

  test("runs it as the host uid, with the rlimits of the line and its files as fd 3 and 4", async () => {
    writeStarterFileSync(join(dir, "three"), "fd three");
    const command = await script("id -u; id -G; ulimit -n; ulimit -f; cat <&3; echo\n");
    const { stdout } = await takeAndRun(
      command,
      { openFiles: 77, fileSizeBytes: 512 * 10 },
      "three",
    );
    const [uid, groups, ...rest] = stdout.toString().split("\n");
    expect(uid).toBe(String(tools.hostUid ?? process.getuid?.()));
    // Dropped to the host uid, it keeps no supplementary group of the runner's.
    if (tools.hostUid !== null) expect(groups).toBe(String(tools.hostUid));
    expect(rest).toEqual(["77", "10", "fd three", ""]);
  });

  test("is itself the host uid once it has joined its cgroup: nothing of it stays root", async () => {
    const starter = await pool.take(defaultProcessLimits);
    try {
      const status = await readFile(`/proc/${starter.pid}/status`, "utf8");
      const ids = (name: string) => status.match(new RegExp(`^${name}:[ \\t]*(.*)$`, "m"))?.[1];
      const expected = String(tools.hostUid ?? process.getuid?.());
      // Real, effective, saved and file-system ids alike; no supplementary group of the runner's.
      expect(ids("Uid")?.split(/\s+/)).toEqual([expected, expected, expected, expected]);
      if (tools.hostUid !== null) {
        expect(ids("Gid")?.split(/\s+/)).toEqual([expected, expected, expected, expected]);
        expect(ids("Groups")).toBe("");
        expect(ids("CapEff")).toBe("0000000000000000");
      }
    } finally {
      await pool.finish(starter);
    }
  });

  test("a sandbox cannot end its own output early by printing something like the end marker", async () => {
    const forged = "\\000E00000000000000000000000000000000\\000";
    const { stdout, status } = await takeAndRun([printf, `before${forged}after`]);
    expect(status).toBe(0);
    expect(stdout).toEqual(
      Buffer.concat([
        Buffer.from("before"),
        Buffer.from(`\0E${"0".repeat(32)}\0`),
        Buffer.from("after"),
      ]),
    );
  });

  test("a killed run ends with the status of SIGKILL", async () => {
    const starter = await pool.take(defaultProcessLimits);
    const chunks: Buffer[] = [];
    const run = starter.launch(
      {
        fd3File: "empty",
        limits: { openFiles: 64, fileSizeBytes: 4096, tasks: null },
        ...(await script("echo up; exec sleep 30\n")),
      },
      { onData: (_stream, chunk) => chunks.push(chunk), onEnd: () => {} },
    );
    for (let i = 0; i < 100 && chunks.length === 0; i++) await sleep(10);
    run.kill();
    expect(await run.done).toEqual({ status: 137 });
    expect(Buffer.concat(chunks).toString()).toBe("up\n");
    await pool.finish(starter);
  });

  test("sandboxes of one starter see only their own output, nothing the one before left behind", async () => {
    if (!limiter.pidsCgroup && !limiter.memoryCgroup) return;
    const first = await pool.take(defaultProcessLimits);
    // A process that outlives its sandbox's main process and writes later.
    const one = await launch(
      first,
      await script("echo one; (sleep 0.3; echo late; echo late >&2) &\n"),
    );
    expect(one.stdout.toString()).toBe("one\n");
    await pool.finish(first);
    const second = await pool.take(defaultProcessLimits);
    // Reused: the cgroup emptied (the straggler was killed), so the same starter serves.
    expect(second).toBe(first);
    const two = await launch(second, await script("echo two; sleep 0.5\n"));
    expect(two.stdout.toString()).toBe("two\n");
    expect(two.stderr).toBe("");
    await pool.finish(second);
  });

  // Needs root (the namespace is the host user namespace's) and cgroups (reuse).
  test("a starter of its own network: an empty namespace, not the runner's, the same for its sandboxes one after another", async () => {
    if (!isRoot || (!limiter.pidsCgroup && !limiter.memoryCgroup)) return;
    // The network namespace, the interfaces and the number of IPv4 routes a sandbox sees.
    const probe = await script(
      'readlink /proc/self/ns/net; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; echo "routes $(tail -n +2 /proc/net/route | wc -l)"\n',
    );
    const seen = async (network: "host" | "own") => {
      const starter = await pool.take(defaultProcessLimits, network);
      try {
        return { starter, lines: (await launch(starter, probe)).stdout.toString().split("\n") };
      } finally {
        await pool.finish(starter);
      }
    };
    const runnerNamespace = readlinkSync("/proc/self/ns/net");
    const first = await seen("own");
    expect(first.starter.network).toBe("own");
    expect(first.lines[0]).toMatch(/^net:\[\d+\]$/);
    expect(first.lines[0]).not.toBe(runnerNamespace);
    // Only the loopback interface, down (no route at all), and the starter's own namespace.
    expect(first.lines.slice(1)).toEqual(["lo", "routes 0", ""]);
    expect(readlinkSync(`/proc/${first.starter.pid}/ns/net`)).toBe(first.lines[0]);

    const second = await seen("own");
    expect(second.starter).toBe(first.starter);
    expect(second.lines[0]).toBe(first.lines[0]);

    const host = await seen("host");
    expect(host.starter.network).toBe("host");
    expect(host.lines[0]).toBe(runnerNamespace);
  });

  test("an idle starter that died is never handed out", async () => {
    for (let i = 0; i < 100 && pool.waiting().length === 0; i++) await sleep(20);
    const [idle] = pool.waiting();
    if (!idle?.pid) throw new Error("no starter came up");
    process.kill(idle.pid, "SIGKILL");
    for (let i = 0; i < 100 && !idle.exited; i++) await sleep(10);
    const next = await pool.take(defaultProcessLimits);
    expect(next).not.toBe(idle);
    expect(next.exited).toBe(false);
    expect((await launch(next, [printf, "fresh"])).stdout.toString()).toBe("fresh");
    await pool.finish(next);
  });

  test("a starter that cannot join its cgroup says why and is not handed out", async () => {
    if (!limiter.pidsCgroup && !limiter.memoryCgroup) return;
    const own = await createResourceLimiter({ warn: () => {} });
    const broken: ResourceLimiter = {
      ...own,
      acquire: async (limits: ProcessLimits) => {
        const cgroup = await own.acquire(limits);
        return { ...cgroup, procsFiles: [join(dir, "no-such-cgroup", "cgroup.procs")] };
      },
    };
    const brokenPool = createStarterPool({
      tools,
      limiter: broken,
      logger: { warn: () => {} },
      dir,
      spares: 0,
      limits: defaultProcessLimits,
    });
    await expect(brokenPool.take(defaultProcessLimits)).rejects.toThrow(
      /sandbox starter exited before it was ready: .*no-such-cgroup/,
    );
    await brokenPool.close();
  });
});

describe("a starter that hangs before it is ready", () => {
  test("is killed after its deadline, saying so, instead of being waited for forever", async () => {
    // Writing its pid into a FIFO nobody reads blocks the join for good.
    const fifo = join(dir, "no-reader.fifo");
    spawnSync("mkfifo", [fifo]);
    const pooled = await limiter.acquire(defaultProcessLimits);
    const starter = spawnStarter(tools, { ...pooled, procsFiles: [fifo] }, dir, {
      readyTimeoutMs: 300,
    });
    await expect(starter.ready).rejects.toThrow(/not ready after 300 ms; killed/);
    expect(starter.exited).toBe(true);
    await limiter.release(pooled);
  });
});

describe("the sandbox host", () => {
  test("removes the starter directories of runners that are gone, and only those", async () => {
    const gone = spawn(sh, ["-c", "exit 0"]);
    await new Promise((resolve) => gone.once("exit", resolve));
    const dead = join(starterDirsParent(), `bifrost-starters-${gone.pid}-test`);
    const alive = join(starterDirsParent(), `bifrost-starters-${process.pid}-test`);
    for (const leftover of [dead, alive]) {
      await mkdir(leftover, { recursive: true });
      await writeFile(join(leftover, "old.args"), "--setenv\0BIFROST_TOKEN\0old\0");
    }
    const host = await createSandboxHost({ warn: () => {} });
    try {
      await expect(access(dead)).rejects.toThrow(/ENOENT/);
      await expect(access(join(alive, "old.args"))).resolves.toBeUndefined();
    } finally {
      await host.close();
      await rm(alive, { recursive: true, force: true });
    }
    await expect(access(host.dir)).rejects.toThrow(/ENOENT/);
  });
});

describe("the starter directory", () => {
  // Its files hold each sandbox's channel token: the runner writes them, the starters' loops
  // (the host uid) read them, and no other uid gets in.
  const rootOnly = process.getuid?.() === 0 ? test : test.skip;

  rootOnly(
    "only the runner and the host uid can read it, and only the runner can write it",
    async () => {
      const host = await createSandboxHost({ warn: () => {} });
      try {
        const hostUid = host.hostUid as number;
        const dirStat = await stat(host.dir);
        expect([dirStat.uid, dirStat.gid, dirStat.mode & 0o7777]).toEqual([0, hostUid, 0o2750]);
        const name = await host.seccompFile(Buffer.from("program"));
        const fileStat = await stat(join(host.dir, name));
        // The directory's group comes with every file; mode 0640.
        expect([fileStat.uid, fileStat.gid, fileStat.mode & 0o777]).toEqual([0, hostUid, 0o640]);
        const as = (uid: number, command: string) =>
          spawnSync(
            findExecutable("setpriv"),
            [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--", sh, "-c", command],
            { cwd: "/", encoding: "utf8" },
          );
        const file = join(host.dir, name);
        expect(as(hostUid, `cat ${file}`).stdout).toBe("program");
        const written = as(hostUid, `echo x > ${host.dir}/forged; mv ${file} ${host.dir}/moved`);
        expect(written.status).not.toBe(0);
        expect(written.stderr).toMatch(/Permission denied/);
        const other = as(12345, `cat ${file}; ls ${host.dir}`);
        expect(other.status).not.toBe(0);
        expect(other.stdout).toBe("");
        expect(other.stderr).toMatch(/Permission denied/);
        await expect(access(join(host.dir, "forged"))).rejects.toThrow(/ENOENT/);
      } finally {
        await host.close();
      }
    },
  );
});

describe("the cgroup pool", () => {
  test("a pooled cgroup removed while idle (another runner's sweep) is replaced, not handed out", async () => {
    // A limiter of its own: no starter pool refills from it meanwhile.
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
    const own = await createResourceLimiter({ warn: () => {} });
    const cgroup = await own.acquire({ ...defaultProcessLimits, tasks: 3 });
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
    await own.release(cgroup);

    const reused = await own.acquire({ ...defaultProcessLimits, tasks: 50 });
    expect(reused.procsFiles).toEqual(cgroup.procsFiles);
    expect(await reused.tasksLimitReached()).toBe(false);
    for (const file of reused.procsFiles) expect((await readFile(file, "utf8")).trim()).toBe("");
    const pidsMax = reused.procsFiles.find((file) => file.includes("/pids/"));
    if (pidsMax) {
      expect((await readFile(pidsMax.replace("cgroup.procs", "pids.max"), "utf8")).trim()).toBe(
        "50",
      );
    }
    await own.release(reused);
    await own.close();
  });
});
