import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import {
  type LaunchRequest,
  launchLine,
  starterCommand,
  writeStarterFileSync,
} from "./sandbox-starter.js";

const tools = {
  shPath: "/bin/sh",
  setprivPath: "/usr/bin/setpriv",
  hostUid: 65534,
  unsharePath: "/usr/bin/unshare",
};

describe("starterCommand", () => {
  test("joins the cgroups, then loops as the host uid, with the runner's death as its own", () => {
    const { file, args } = starterCommand(tools, [
      "/cg/memory/x/cgroup.procs",
      "/cg/pids/x/cgroup.procs",
    ]);
    expect(file).toBe("/bin/sh");
    expect(args[0]).toBe("-c");
    // Values are positional parameters, never spliced into the scripts.
    expect(args[1]).not.toContain("/cg/");
    expect(args.slice(2, 14)).toEqual([
      "sandbox-starter",
      "2",
      "/cg/memory/x/cgroup.procs",
      "/cg/pids/x/cgroup.procs",
      "/usr/bin/setpriv",
      "--pdeathsig",
      "KILL",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "--",
      "/bin/sh",
    ]);
    expect(args[14]).toBe("-c");
    // The loop execs each command itself: no setpriv, no uid of its own.
    expect(args[15]).not.toContain("setpriv");
    expect(args[15]).not.toContain("65534");
    expect(args.slice(16)).toEqual(["sandbox-starter"]);
  });

  test("a starter of its own network unshares one, as root, right after the join and before the drop", () => {
    const { args } = starterCommand(tools, ["/cg/pids/x/cgroup.procs"], "own");
    expect(args.slice(3, 9)).toEqual([
      "1",
      "/cg/pids/x/cgroup.procs",
      "/usr/bin/unshare",
      "--net",
      "--",
      "/usr/bin/setpriv",
    ]);
    expect(starterCommand(tools, [], "host").args).not.toContain("/usr/bin/unshare");
    expect(() => starterCommand({ ...tools, unsharePath: null }, [], "own")).toThrow(
      /needs unshare \(util-linux\) and root/,
    );
  });

  test("without a host uid the loop keeps the runner's", () => {
    const { args } = starterCommand({ ...tools, hostUid: null }, []);
    expect(args[3]).toBe("0");
    expect(args.slice(4, 9)).toEqual(["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", "/bin/sh"]);
    expect(args.join(" ")).not.toMatch(/--reuid|--regid|--clear-groups/);
  });
});

describe("launchLine", () => {
  const request: LaunchRequest = {
    fd3File: "abc.args",
    fd4File: "seccomp-1.bpf",
    limits: { openFiles: 256, fileSizeBytes: 1024 * 1024 + 100, tasks: null },
    argv: ["/usr/bin/bwrap", "--args", "3", "--", "/bin/deno", "--allow-net=a.example,b.example"],
  };

  test("is the nonce, the fd files, the rlimits (file size in 512-byte blocks) and the words", () => {
    expect(launchLine("n1", request)).toBe(
      "n1 abc.args seccomp-1.bpf 256 2048 - /usr/bin/bwrap --args 3 -- /bin/deno --allow-net=a.example,b.example\n",
    );
    expect(launchLine("n1", { ...request, limits: { ...request.limits, tasks: 64 } })).toContain(
      " 2048 64 /usr/bin/bwrap ",
    );
  });

  test("refuses a word the starter would split, an empty one, and a limit that is no count", () => {
    for (const bad of ["", "two words", "line\nbreak", "tab\there", "nul\0"]) {
      expect(() => launchLine("n1", { ...request, argv: ["/bin/deno", bad] })).toThrow(
        /must be non-empty and hold no whitespace/,
      );
    }
    expect(() =>
      launchLine("n1", { ...request, limits: { ...request.limits, openFiles: 0 } }),
    ).toThrow(/open files limit 0 must be a positive integer/);
  });
});

describe("writeStarterFileSync", () => {
  test("writes a new file of mode 0640 whatever the umask, refuses an existing one, and leaves nothing half-written", () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-starter-file-"));
    const previous = process.umask(0o077);
    try {
      const path = join(dir, "a.args");
      writeStarterFileSync(path, "--setenv\0X\0y\0");
      expect(statSync(path).mode & 0o777).toBe(0o640);
      expect(readFileSync(path, "utf8")).toBe("--setenv\0X\0y\0");
      // Never another's file under the same name (nor one a symlink points to).
      writeFileSync(join(dir, "taken"), "theirs");
      expect(() => writeStarterFileSync(join(dir, "taken"), "ours")).toThrow(/EEXIST/);
      expect(readFileSync(join(dir, "taken"), "utf8")).toBe("theirs");
      // A write that fails removes its file, so a retry under the same name can succeed.
      const failing = join(dir, "seccomp.bpf");
      expect(() => writeStarterFileSync(failing, 42 as unknown as string)).toThrow();
      expect(existsSync(failing)).toBe(false);
      writeStarterFileSync(failing, "program");
      expect(readFileSync(failing, "utf8")).toBe("program");
    } finally {
      process.umask(previous);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
