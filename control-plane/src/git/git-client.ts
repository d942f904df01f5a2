import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { simpleGit } from "simple-git";
import { failedPrecondition } from "../errors.js";
import type { GitScheme } from "./repository-url.js";

/** A decrypted credential, only ever held in memory for one fetch. */
export type GitCredentialSecret =
  | { kind: "token"; token: string }
  | { kind: "ssh_key"; privateKey: string };

/** One entry of `git ls-tree -r`. */
export interface TreeEntry {
  /** Path in the repository. */
  path: string;
  mode: string;
  type: "blob" | "tree" | "commit";
  object: string;
  /** Size in bytes (blobs only). */
  size: number | null;
}

/** Settings of every git process. */
export interface GitSettings {
  allowedSchemes: readonly GitScheme[];
  timeoutMs: number;
}

// Environment variables git gets; simple-git strips any other GIT_* variable.
const gitEnvironment = [
  "GIT_CONFIG_NOSYSTEM",
  "GIT_CONFIG_GLOBAL",
  "GIT_CONFIG_COUNT",
  "GIT_CONFIG_KEY_0",
  "GIT_CONFIG_VALUE_0",
  "GIT_CONFIG_KEY_1",
  "GIT_CONFIG_VALUE_1",
  "GIT_TERMINAL_PROMPT",
  "GIT_ALLOW_PROTOCOL",
  "GIT_SSH_COMMAND",
] as const;

/**
 * The environment of a git process: nothing of the control plane's own (no credentials, no
 * user or system git config), no prompts, only the allowed transports, no HTTP redirects (a
 * public URL must not bounce git to an internal one), and the credential if there is one —
 * through the environment, never on the command line where other users could see it.
 */
function gitEnv(
  settings: GitSettings,
  home: string,
  credential: { header?: string; sshKeyFile?: string; knownHosts?: string } = {},
): Record<string, string> {
  const ssh = [
    "ssh",
    "-o BatchMode=yes",
    "-o StrictHostKeyChecking=accept-new",
    `-o UserKnownHostsFile=${credential.knownHosts ?? "/dev/null"}`,
    ...(credential.sshKeyFile ? [`-i ${credential.sshKeyFile}`, "-o IdentitiesOnly=yes"] : []),
  ].join(" ");
  const config: Array<[string, string]> = [["http.followRedirects", "false"]];
  if (credential.header) config.push(["http.extraHeader", credential.header]);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    LANG: "C",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ALLOW_PROTOCOL: settings.allowedSchemes.join(":"),
    GIT_SSH_COMMAND: ssh,
    GIT_CONFIG_COUNT: String(config.length),
  };
  config.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return env;
}

function basicAuthHeader(token: string): string {
  // "user:token" as given; a bare token goes with a user name hosts accept for tokens.
  const pair = token.includes(":") ? token : `x-access-token:${token}`;
  return `Authorization: Basic ${Buffer.from(pair).toString("base64")}`;
}

/** Turns git's stderr into a message that says what went wrong, without secrets. */
export function describeGitFailure(
  stderr: string,
  context: { url: string; branch: string },
): string {
  const text = stderr.replace(/Authorization: [^\s]+ [^\s]+/g, "Authorization: ***");
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("hint:"));
  // git's own summary line ("fatal: …") says most; advice lines follow it.
  const last = lines.find((l) => /^(fatal|error):/.test(l)) ?? lines.pop() ?? "";
  if (/couldn't find remote ref/i.test(text)) return `branch "${context.branch}" does not exist`;
  if (
    /Authentication failed|could not read (Username|Password)|Permission denied \(publickey|HTTP 401|HTTP 403|returned error: 40[13]/i.test(
      text,
    )
  ) {
    return `authentication to ${context.url} failed: check the binding's credential (${last})`;
  }
  // ssh's own words when the server's key differs from the one pinned on first contact; git
  // then adds "Could not read from remote repository", which alone would read as unreachable.
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/i.test(text)) {
    return `the SSH host key of ${hostOf(context.url)} changed since this binding first connected (a man in the middle, or a rotated server key): nothing was fetched; if the server's key was changed on purpose, bind the repository again to trust the new one`;
  }
  if (
    /Could not resolve host|Connection refused|Failed to connect|Connection timed out|No route to host|Network is unreachable|Could not read from remote repository|does not appear to be a git repository|not found|HTTP 404|returned error: 404/i.test(
      text,
    )
  ) {
    return `repository ${context.url} is not reachable or does not exist (${last})`;
  }
  if (/transport '.*' not allowed/i.test(text)) {
    return `repository ${context.url} uses a transport this deployment does not allow`;
  }
  return `git failed for ${context.url}: ${last || "no output"}`;
}

/** The host of an https://, ssh:// or scp-style (user@host:path) repository URL. */
function hostOf(url: string): string {
  try {
    return new URL(url).hostname || url;
  } catch {
    return /^[^@/]+@([^:/]+):/.exec(url)?.[1] ?? url;
  }
}

/**
 * A local bare mirror of one binding's branch, under the control plane's work directory.
 * Files are never checked out: the tree and blobs are read from git's object store, so
 * nothing in the repository (hooks, attributes, filters, submodules) runs or is followed.
 */
export interface GitMirror {
  /** Fetches the branch (shallow) and returns its commit id. */
  fetch(options: {
    url: string;
    branch: string;
    credential: GitCredentialSecret | undefined;
  }): Promise<string>;
  /** Every entry of the commit's tree, recursively. */
  listTree(commit: string): Promise<TreeEntry[]>;
  /** The content of the given blobs. */
  readBlobs(objects: readonly string[]): Promise<Map<string, Buffer>>;
}

/** Opens (creating if needed) the mirror in `dir`. */
export async function openGitMirror(dir: string, settings: GitSettings): Promise<GitMirror> {
  const home = join(dir, "home");
  await mkdir(home, { recursive: true, mode: 0o700 });
  const repo = join(dir, "repo.git");
  const git = (env: Record<string, string>, baseDir = repo) =>
    simpleGit({
      baseDir,
      timeout: { block: settings.timeoutMs },
      allowEnvironment: gitEnvironment,
      // These variables are set by gitEnv alone, from fixed values and paths of our own work
      // directory (no user input reaches the ssh command line); they make git safer, not less.
      unsafe: {
        allowUnsafeConfigPaths: true,
        allowUnsafeConfigEnvCount: true,
        allowUnsafeSshCommand: true,
      },
    }).env(env);
  if (!existsSync(join(repo, "HEAD"))) {
    await mkdir(repo, { recursive: true });
    await git(gitEnv(settings, home)).raw(["init", "--bare", "--quiet"]);
  }
  const refName = "refs/bifrost/synced";

  return {
    async fetch({ url, branch, credential }) {
      const secrets = await mkdtemp(join(dir, "credential-"));
      try {
        const extra: { header?: string; sshKeyFile?: string; knownHosts?: string } = {
          knownHosts: join(dir, "known_hosts"),
        };
        if (credential?.kind === "token") extra.header = basicAuthHeader(credential.token);
        if (credential?.kind === "ssh_key") {
          extra.sshKeyFile = join(secrets, "key");
          const key = credential.privateKey.endsWith("\n")
            ? credential.privateKey
            : `${credential.privateKey}\n`;
          await writeFile(extra.sshKeyFile, key, { mode: 0o600 });
          await chmod(extra.sshKeyFile, 0o600);
        }
        const env = gitEnv(settings, home, extra);
        try {
          await git(env).raw([
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--depth=1",
            "--",
            url,
            `+refs/heads/${branch}:${refName}`,
          ]);
        } catch (error) {
          const stderr = (error as Error).message;
          if (/couldn't find remote ref/i.test(stderr)) {
            const heads = await git(env)
              .raw(["ls-remote", "--heads", "--", url])
              .catch(() => "");
            const names = heads
              .split("\n")
              .map((l) => l.split("\t")[1]?.replace("refs/heads/", ""))
              .filter(Boolean);
            throw failedPrecondition(
              names.length === 0
                ? `repository ${url} is empty: it has no branches yet`
                : `branch "${branch}" does not exist in ${url}; it has: ${names.slice(0, 10).join(", ")}`,
            );
          }
          throw failedPrecondition(describeGitFailure(stderr, { url, branch }));
        }
        const commit = await git(env).raw(["rev-parse", "--verify", `${refName}^{commit}`]);
        return commit.trim();
      } finally {
        await rm(secrets, { recursive: true, force: true });
      }
    },

    async listTree(commit) {
      const out = await git(gitEnv(settings, home)).raw([
        "ls-tree",
        "-r",
        "-l",
        "-z",
        "--full-tree",
        commit,
      ]);
      return parseLsTree(out);
    },

    readBlobs(objects) {
      return catFileBatch(repo, gitEnv(settings, home), objects, settings.timeoutMs);
    },
  };
}

/** Parses `git ls-tree -r -l -z` output: "<mode> <type> <object> <size>\t<path>\0". */
export function parseLsTree(out: string): TreeEntry[] {
  const entries: TreeEntry[] = [];
  for (const record of out.split("\0")) {
    if (!record) continue;
    const tab = record.indexOf("\t");
    const [mode, type, object, size] = record.slice(0, tab).split(/ +/);
    entries.push({
      path: record.slice(tab + 1),
      mode: mode as string,
      type: type as TreeEntry["type"],
      object: object as string,
      size: size === undefined || size === "-" ? null : Number(size),
    });
  }
  return entries;
}

/**
 * Reads many blobs through one `git cat-file --batch` process. simple-git runs a command
 * with arguments only (no stdin) and decodes output as text; the batch protocol needs both
 * stdin and byte-exact output, so this one call spawns git itself, with the same environment.
 */
function catFileBatch(
  repo: string,
  env: Record<string, string>,
  objects: readonly string[],
  timeoutMs: number,
): Promise<Map<string, Buffer>> {
  const unique = [...new Set(objects)];
  if (unique.length === 0) return Promise.resolve(new Map());
  return new Promise((resolve, reject) => {
    const child = spawn("git", ["-C", repo, "cat-file", "--batch"], {
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const chunks: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`git cat-file failed (${code ?? "killed"}): ${stderr.trim()}`));
        return;
      }
      try {
        resolve(parseCatFileBatch(Buffer.concat(chunks)));
      } catch (error) {
        reject(error);
      }
    });
    child.stdin.end(`${unique.join("\n")}\n`);
  });
}

function parseCatFileBatch(out: Buffer): Map<string, Buffer> {
  const blobs = new Map<string, Buffer>();
  let at = 0;
  while (at < out.length) {
    const newline = out.indexOf(10, at);
    if (newline < 0) break;
    const header = out.subarray(at, newline).toString("utf8").split(" ");
    at = newline + 1;
    if (header[1] === "missing") throw new Error(`git object ${header[0]} is missing`);
    const size = Number(header[2]);
    blobs.set(header[0] as string, out.subarray(at, at + size));
    at += size + 1; // content, then a newline
  }
  return blobs;
}
