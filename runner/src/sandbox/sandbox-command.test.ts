import { describe, expect, test } from "vitest";
import { buildNetworkPolicy } from "./network-policy.js";
import {
  buildSandboxCommand,
  type SandboxCommandSpec,
  sandboxArgsFd,
  sandboxSeccompFd,
} from "./sandbox-command.js";

const isolated = buildNetworkPolicy({ workflowHosts: [], organizationHosts: [] });
const shared = buildNetworkPolicy({ workflowHosts: ["api.halo.com"], organizationHosts: [] });

function spec(overrides: Partial<SandboxCommandSpec> = {}): SandboxCommandSpec {
  return {
    bwrapPath: "/usr/bin/bwrap",
    rootDir: "/var/lib/bifrost/sandbox-root-0123",
    workspaceDir: "/var/lib/bifrost/trees/org-a/f00d",
    jobDir: "/var/lib/bifrost/jobs/exec-1",
    socketPath: "/var/lib/bifrost/jobs/sdk-0a1b.sock",
    denoDir: "/var/lib/bifrost/deno-dirs/org-a",
    network: isolated,
    token: "secret-token",
    heapLimitMb: 256,
    tmpSizeBytes: 16 * 1024 * 1024,
    arch: "x64",
    ...overrides,
  };
}

/** Index of the pair `[flag, value...]` in args, or -1. */
function pairAt(args: readonly string[], ...pair: string[]): number {
  return args.findIndex((_, i) => pair.every((part, j) => args[i + j] === part));
}

describe("buildSandboxCommand", () => {
  test("argv holds bwrap, the fd of its options and deno run; no host path or token", () => {
    const command = buildSandboxCommand(spec());
    expect(command.file).toBe("/usr/bin/bwrap");
    expect(command.args.slice(0, 5)).toEqual([
      "--args",
      String(sandboxArgsFd),
      "--",
      "/bin/deno",
      "run",
    ]);
    const argv = command.args.join(" ");
    for (const secret of ["secret-token", "/var/lib/bifrost", "org-a", "/opt/"]) {
      expect(argv).not.toContain(secret);
    }
    expect(command.args.at(-1)).toBe("/job/entry.js");
  });

  test("new namespaces, no capabilities, nobody, no nested user namespaces, dies with the runner", () => {
    const { fdArgs } = buildSandboxCommand(spec());
    for (const flag of [
      "--unshare-user",
      "--unshare-pid",
      "--as-pid-1",
      "--unshare-ipc",
      "--unshare-uts",
      "--unshare-cgroup-try",
      "--unshare-net",
      "--disable-userns",
      "--die-with-parent",
      "--new-session",
      "--clearenv",
    ]) {
      expect(fdArgs).toContain(flag);
    }
    expect(pairAt(fdArgs, "--uid", "65534")).toBeGreaterThanOrEqual(0);
    expect(pairAt(fdArgs, "--gid", "65534")).toBeGreaterThanOrEqual(0);
    expect(pairAt(fdArgs, "--cap-drop", "ALL")).toBeGreaterThanOrEqual(0);
    expect(pairAt(fdArgs, "--seccomp", String(sandboxSeccompFd))).toBeGreaterThanOrEqual(0);
    expect(fdArgs).not.toContain("--share-net");
    expect(fdArgs).not.toContain("--unshare-all");
  });

  test("the environment is exactly the contract's", () => {
    const { fdArgs } = buildSandboxCommand(spec());
    const env = new Map<string, string>();
    fdArgs.forEach((arg, i) => {
      if (arg === "--setenv") env.set(fdArgs[i + 1] as string, fdArgs[i + 2] as string);
    });
    expect(Object.fromEntries(env)).toEqual({
      DENO_DIR: "/deno-dir",
      HOME: "/tmp",
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      DENO_NO_PACKAGE_JSON: "1",
      BIFROST_SOCKET: "/run/bifrost/sdk.sock",
      BIFROST_TOKEN: "secret-token",
    });
    expect(fdArgs.indexOf("--clearenv")).toBeLessThan(fdArgs.indexOf("--setenv"));
  });

  test("only the sandbox root (read-only, as /), the contract's directories and two devices are mounted", () => {
    const s = spec();
    const { fdArgs } = buildSandboxCommand(s);
    const binds: string[] = [];
    fdArgs.forEach((arg, i) => {
      if (arg.endsWith("bind")) binds.push(`${arg} ${fdArgs[i + 1]} ${fdArgs[i + 2]}`);
    });
    expect(binds).toEqual([
      `--ro-bind ${s.rootDir} /`,
      `--ro-bind ${s.workspaceDir} /workspace`,
      `--ro-bind ${s.jobDir} /job`,
      `--ro-bind ${s.socketPath} /run/bifrost/sdk.sock`,
      `--bind ${s.denoDir} /deno-dir`,
      "--dev-bind /dev/null /dev/null",
      "--dev-bind /dev/urandom /dev/urandom",
    ]);
    expect(pairAt(fdArgs, "--size", String(16 * 1024 * 1024), "--tmpfs", "/tmp")).toBeGreaterThan(
      0,
    );
    expect(pairAt(fdArgs, "--proc", "/proc")).toBeGreaterThan(0);
    // The root comes first: every other mount lands on top of it.
    expect(fdArgs.findIndex((arg) => arg.endsWith("bind") || arg === "--tmpfs")).toBe(
      pairAt(fdArgs, "--ro-bind", s.rootDir, "/"),
    );
    expect(fdArgs).not.toContain("--dev");
    expect(fdArgs.join(" ")).not.toMatch(
      /--(dev-)?bind(-try)? \/ |\/etc\/(passwd|shadow)|\/home|\/root/,
    );
  });

  test("a declared host shares the host network and mounts name resolution files", () => {
    const { fdArgs } = buildSandboxCommand(
      spec({ network: shared, resolver: { hosts: "/srv/test/hosts" } }),
    );
    expect(fdArgs).not.toContain("--unshare-net");
    // The root is read-only: the files go onto a tmpfs at /etc, read-only once in place.
    const tmpfs = pairAt(fdArgs, "--tmpfs", "/etc");
    expect(tmpfs).toBeGreaterThan(0);
    expect(pairAt(fdArgs, "--remount-ro", "/etc")).toBeGreaterThan(tmpfs);
    expect(pairAt(fdArgs, "--ro-bind", "/srv/test/hosts", "/etc/hosts")).toBeGreaterThan(tmpfs);
    expect(pairAt(fdArgs, "--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf")).toBeGreaterThan(0);
    expect(pairAt(fdArgs, "--ro-bind", "/etc/nsswitch.conf", "/etc/nsswitch.conf")).toBeGreaterThan(
      0,
    );
    const isolatedArgs = buildSandboxCommand(spec()).fdArgs.join(" ");
    expect(isolatedArgs).not.toContain("/etc/");
  });

  test("deno gets the contract's flags and nothing broader", () => {
    const { args } = buildSandboxCommand(spec({ network: shared }));
    for (const flag of [
      "--no-prompt",
      "--no-config",
      "--no-lock",
      "--no-remote",
      "--no-npm",
      "--node-modules-dir=none",
      "--import-map=/job/import_map.json",
      "--v8-flags=--max-old-space-size=256",
      "--allow-net=unix:/run/bifrost/sdk.sock,api.halo.com",
      "--allow-read=/run/bifrost/sdk.sock",
      "--allow-write=/run/bifrost/sdk.sock",
      "--allow-env=BIFROST_SOCKET,BIFROST_TOKEN",
    ]) {
      expect(args).toContain(flag);
    }
    const denyNet = args.find((arg) => arg.startsWith("--deny-net="));
    expect(denyNet).toContain("127.0.0.0/8");
    expect(denyNet).toContain("0.0.0.0/8");
    for (const arg of args) {
      expect(arg).not.toMatch(
        /^(-A|--allow-all|--allow-run|--allow-ffi|--allow-sys|--allow-import|-[RWNESI]$)/,
      );
      expect(arg).not.toMatch(/^--allow-(net|read|write|env)$/);
    }
  });

  test("scratch space adds /tmp to read and write, nothing else", () => {
    const { args } = buildSandboxCommand(spec({ scratch: true }));
    expect(args).toContain("--allow-read=/run/bifrost/sdk.sock,/tmp");
    expect(args).toContain("--allow-write=/run/bifrost/sdk.sock,/tmp");
  });

  test("relative paths, NUL bytes and silly limits are refused", () => {
    expect(() => buildSandboxCommand(spec({ jobDir: "jobs/1" }))).toThrow(
      "must be an absolute path",
    );
    expect(() => buildSandboxCommand(spec({ token: "a\0b" }))).toThrow("contain no NUL");
    expect(() => buildSandboxCommand(spec({ heapLimitMb: 0 }))).toThrow("heap limit");
    expect(() => buildSandboxCommand(spec({ tmpSizeBytes: 1.5 }))).toThrow("tmp size");
  });
});
