import { isAbsolute } from "node:path";
import type { NetworkPolicy } from "./network-policy.js";
import { currentSeccompArch, type SeccompArch, seccompFilter } from "./seccomp.js";

/** Fixed paths inside the sandbox (docs/execution-contract.md): nothing names an org or job. */
export const sandboxPaths = {
  deno: "/bin/deno",
  workspace: "/workspace",
  sdk: "/sdk",
  job: "/job",
  importMap: "/job/import_map.json",
  entry: "/job/entry.js",
  socket: "/run/bifrost/sdk.sock",
  denoDir: "/deno-dir",
  tmp: "/tmp",
} as const;

/**
 * The devices a sandbox gets, bound from the host. Deno needs no other: /dev/null stands in
 * for a closed standard stream, and V8 seeds its random numbers from /dev/urandom (without
 * it, from the clock). User code can open neither: Deno grants it no read of /dev.
 */
export const sandboxDevices = ["/dev/null", "/dev/urandom"] as const;

/** The unprivileged identity code runs as inside the sandbox ("nobody"). */
export const sandboxUid = 65534;

/**
 * Everything the sandbox command line is built from. All paths are host paths, and must be
 * reachable by the host uid bubblewrap runs as (65534 when the runner is root, see
 * sandbox-process.ts): directories searchable, files readable, the socket mode 0666, the
 * Deno cache owned by it (`ensureDenoDir`).
 */
export interface SandboxCommandSpec {
  bwrapPath: string;
  /**
   * The sandbox root (sandbox-root.ts): Deno, its libraries, the SDK and the mount points,
   * mounted read-only as /.
   */
  rootDir: string;
  /** The org's materialized effective tree (tree.ts), mounted read-only at /workspace. */
  workspaceDir: string;
  /** Holds import_map.json and entry.js; mounted read-only at /job. */
  jobDir: string;
  /** This sandbox's SDK socket (sdk-channel.ts); mounted read-only at /run/bifrost/sdk.sock. */
  socketPath: string;
  /** The org's Deno cache, mounted read-write at /deno-dir. */
  denoDir: string;
  network: NetworkPolicy;
  /**
   * Host files for name resolution, mounted only when the host network is shared. Defaults
   * to the host's; tests point `hosts` at their own file.
   */
  resolver?: { resolvConf?: string; hosts?: string; nsswitch?: string };
  token: string;
  heapLimitMb: number;
  tmpSizeBytes: number;
  /** Grant read/write on /tmp (a size-capped tmpfs). Off: the contract grants neither. */
  scratch?: boolean;
  /** Architecture of the seccomp filter; defaults to this runner's. */
  arch?: SeccompArch;
}

/**
 * A sandbox command line: `file` + `args` is the argv; `fdArgs` are the bubblewrap options,
 * written NUL-terminated to fd 3 (`--args 3`). They travel on a pipe because pid 1 of the
 * sandbox is a fork of bubblewrap whose /proc/1/cmdline user code can read: that way no host
 * path and no token ever appears in an argv, inside the sandbox or in the host's `ps`.
 * `seccomp` is the filter program (seccomp.ts), written to fd 4.
 */
export interface SandboxCommand {
  file: string;
  args: string[];
  fdArgs: string[];
  seccomp: Buffer;
}

/** The fd `fdArgs` must be written to. */
export const sandboxArgsFd = 3;
/** The fd the seccomp program must be written to. */
export const sandboxSeccompFd = 4;

/** How every sandbox command starts: bubblewrap reads its options from fd 3. */
export const bwrapFixedArgs: readonly string[] = ["--args", String(sandboxArgsFd), "--"];

const defaultResolver = {
  resolvConf: "/etc/resolv.conf",
  hosts: "/etc/hosts",
  nsswitch: "/etc/nsswitch.conf",
};

/**
 * Builds the bubblewrap + Deno command for one execution (pure). The sandbox gets new user,
 * pid, ipc, uts, cgroup and mount namespaces (and an empty network namespace unless a host
 * is declared), uid/gid 65534 with no capabilities and no nested user namespaces, a cleared
 * environment with only the contract's variables, and a read-only root (sandbox-root.ts)
 * holding only: the Deno binary and its libraries, /sdk, /workspace and /job (read-only), the
 * SDK socket, the org's /deno-dir (read-write), a size-capped /tmp, a fresh /proc and
 * /dev/null and /dev/urandom (plus resolv.conf, hosts and nsswitch.conf when the network is
 * shared). Deno gets no
 * read, write, run, ffi, sys or import permission beyond the SDK socket.
 */
export function buildSandboxCommand(spec: SandboxCommandSpec): SandboxCommand {
  const hostPaths = [spec.rootDir, spec.workspaceDir, spec.jobDir, spec.socketPath, spec.denoDir];
  for (const path of hostPaths) checkArgument("host path", path, true);
  checkArgument("token", spec.token, false);
  if (!Number.isInteger(spec.heapLimitMb) || spec.heapLimitMb < 16) {
    throw new Error(`heap limit ${spec.heapLimitMb} MB must be an integer of at least 16`);
  }
  if (!Number.isInteger(spec.tmpSizeBytes) || spec.tmpSizeBytes < 4096) {
    throw new Error(`tmp size ${spec.tmpSizeBytes} must be an integer of at least 4096 bytes`);
  }

  const env: Record<string, string> = {
    DENO_DIR: sandboxPaths.denoDir,
    HOME: sandboxPaths.tmp,
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
    DENO_NO_PACKAGE_JSON: "1",
    BIFROST_SOCKET: sandboxPaths.socket,
    BIFROST_TOKEN: spec.token,
  };
  const fdArgs = [
    "--unshare-user",
    "--unshare-pid",
    // Deno is pid 1 itself. With an init of its own, bubblewrap exits on the init's word
    // without reaping it, orphaning one process per run to the host's pid 1 (a zombie per
    // execution where that pid 1 reaps nothing, as a runner that is pid 1 of a container).
    // Deno starts no processes (never --allow-run), so there is nothing for an init to reap.
    "--as-pid-1",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    ...(spec.network.shareHostNetwork ? [] : ["--unshare-net"]),
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
    "--uid",
    String(sandboxUid),
    "--gid",
    String(sandboxUid),
    "--hostname",
    "sandbox",
    "--cap-drop",
    "ALL",
    "--seccomp",
    String(sandboxSeccompFd),
    "--clearenv",
    ...Object.entries(env).flatMap(([name, value]) => ["--setenv", name, value]),
    // One bind for Deno, its libraries and the SDK: each bind costs bubblewrap a mount, a
    // remount and a parse of the mount table (sandbox-root.ts).
    "--ro-bind",
    spec.rootDir,
    "/",
    ...(spec.network.shareHostNetwork ? resolverBinds(spec.resolver) : []),
    "--ro-bind",
    spec.workspaceDir,
    sandboxPaths.workspace,
    "--ro-bind",
    spec.jobDir,
    sandboxPaths.job,
    // Connecting to a socket is not a write to its file system, so read-only is enough. The
    // socket alone, not a directory of its own: one mkdir, chmod and rmdir fewer per run.
    "--ro-bind",
    spec.socketPath,
    sandboxPaths.socket,
    "--bind",
    spec.denoDir,
    sandboxPaths.denoDir,
    "--size",
    String(spec.tmpSizeBytes),
    "--tmpfs",
    sandboxPaths.tmp,
    "--proc",
    "/proc",
    // Two devices rather than bubblewrap's --dev (a tmpfs, six device binds, devpts and
    // /dev/shm): see sandboxDevices.
    ...sandboxDevices.flatMap((device) => ["--dev-bind", device, device]),
    "--chdir",
    "/",
  ];
  return {
    file: spec.bwrapPath,
    args: [...bwrapFixedArgs, sandboxPaths.deno, ...denoRunArgs(spec)],
    fdArgs,
    seccomp: seccompFilter(spec.arch ?? currentSeccompArch()),
  };
}

/** The `deno run` arguments of the contract (exported for the unit tests and the docs). */
export function denoRunArgs(spec: Pick<SandboxCommandSpec, "network" | "heapLimitMb" | "scratch">) {
  const socket = sandboxPaths.socket;
  const readable = spec.scratch ? `${socket},${sandboxPaths.tmp}` : socket;
  return [
    "run",
    "--no-prompt",
    "--no-config",
    "--no-lock",
    "--no-remote",
    "--no-npm",
    "--node-modules-dir=none",
    `--import-map=${sandboxPaths.importMap}`,
    `--v8-flags=--max-old-space-size=${spec.heapLimitMb}`,
    `--allow-net=${[`unix:${socket}`, ...spec.network.allowNet].join(",")}`,
    `--allow-read=${readable}`,
    `--allow-write=${readable}`,
    "--allow-env=BIFROST_SOCKET,BIFROST_TOKEN",
    ...(spec.network.denyNet.length > 0 ? [`--deny-net=${spec.network.denyNet.join(",")}`] : []),
    sandboxPaths.entry,
  ];
}

function resolverBinds(resolver: SandboxCommandSpec["resolver"]): string[] {
  const files = { ...defaultResolver, ...resolver };
  for (const path of Object.values(files)) checkArgument("resolver file", path, true);
  // The root is read-only and its /etc empty: the files are mounted on a tmpfs of their own,
  // made read-only again once they are in place.
  return [
    ["--tmpfs", "/etc"],
    ["--ro-bind", files.resolvConf, "/etc/resolv.conf"],
    ["--ro-bind", files.hosts, "/etc/hosts"],
    ["--ro-bind", files.nsswitch, "/etc/nsswitch.conf"],
    ["--remount-ro", "/etc"],
  ].flat();
}

// NUL would split an fd argument in two; a relative path would resolve against the runner's
// working directory, which is not what the caller meant.
function checkArgument(what: string, value: string, mustBeAbsolute: boolean): void {
  if (value.length === 0 || value.includes("\0")) {
    throw new Error(`${what} ${JSON.stringify(value)} must be non-empty and contain no NUL`);
  }
  if (mustBeAbsolute && !isAbsolute(value)) {
    throw new Error(`${what} ${JSON.stringify(value)} must be an absolute path`);
  }
}
