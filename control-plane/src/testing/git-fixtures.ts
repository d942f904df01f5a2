import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

const authorEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "Bifrost Test",
  GIT_AUTHOR_EMAIL: "test@bifrost.test",
  GIT_COMMITTER_NAME: "Bifrost Test",
  GIT_COMMITTER_EMAIL: "test@bifrost.test",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

/** A real git repository on a local path, changed through commits like a developer would. */
export interface TestRepository {
  dir: string;
  /** file:// URL of the repository. */
  url: string;
  git(...args: string[]): Promise<string>;
  /**
   * Writes files (a string or bytes; null deletes) and commits them on the current branch;
   * returns the commit id.
   */
  commit(files: Record<string, string | Buffer | null>, message?: string): Promise<string>;
  /** Adds a symbolic link (committed with the next commit). */
  symlink(path: string, target: string): Promise<void>;
  /** Adds a submodule entry (a gitlink) at path, pointing at some commit. */
  gitlink(path: string, commit: string): Promise<void>;
  remove(): Promise<void>;
}

/** Creates an empty repository (no commits) on branch `main` in a new temporary folder. */
export async function createTestRepository(): Promise<TestRepository> {
  const dir = await mkdtemp(join(tmpdir(), "bifrost-git-repo-"));
  const git = async (...args: string[]) =>
    (await run("git", args, { cwd: dir, env: authorEnv, maxBuffer: 64 * 1024 * 1024 })).stdout;
  await git("init", "--quiet", "--initial-branch=main");
  let counter = 0;
  // Paths to stage with the next commit. Only these are added: "add --all" would also drop
  // a gitlink whose folder is not checked out.
  const pending: string[] = [];
  return {
    dir,
    url: `file://${dir}`,
    git,
    async commit(files, message) {
      for (const [path, content] of Object.entries(files)) {
        const full = join(dir, path);
        if (content === null) {
          await git("rm", "--quiet", "--", path);
          continue;
        }
        await mkdir(dirname(full), { recursive: true });
        await writeFile(full, content);
        pending.push(path);
      }
      if (pending.length) await git("add", "--", ...pending.splice(0));
      await git("commit", "--quiet", "--allow-empty", "-m", message ?? `change ${++counter}`);
      return (await git("rev-parse", "HEAD")).trim();
    },
    async symlink(path, target) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await symlink(target, join(dir, path));
      pending.push(path);
    },
    async gitlink(path, commit) {
      await git("update-index", "--add", "--cacheinfo", `160000,${commit},${path}`);
    },
    async remove() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A git smart-HTTP server (git http-backend) on loopback that requires basic auth. */
export interface TestGitHttpServer {
  /** http://127.0.0.1:port/<name> for a repository under the served root. */
  urlOf(name: string): string;
  /** HTTP requests served so far, refused ones included. */
  requests(): number;
  close(): Promise<void>;
}

/**
 * Serves the repositories under `root` over HTTP through git's own CGI, `git http-backend`,
 * refusing every request whose basic-auth password is not `token` (any user name).
 */
export async function startGitHttpServer(root: string, token: string): Promise<TestGitHttpServer> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    const auth = req.headers.authorization ?? "";
    const password = auth.startsWith("Basic ")
      ? Buffer.from(auth.slice(6), "base64").toString().split(":").slice(1).join(":")
      : undefined;
    if (password !== token) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="git"' });
      res.end("unauthorized");
      return;
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const cgi = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: "1",
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_CONFIG_GLOBAL: "/dev/null",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? "GET",
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        ...(req.headers["content-length"] && { CONTENT_LENGTH: req.headers["content-length"] }),
        ...(req.headers["content-encoding"] && {
          HTTP_CONTENT_ENCODING: req.headers["content-encoding"],
        }),
        ...(req.headers["git-protocol"] && { GIT_PROTOCOL: req.headers["git-protocol"] as string }),
        REMOTE_USER: "test",
        REMOTE_ADDR: "127.0.0.1",
      },
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      headersDone = true;
      let statusCode = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString().split("\r\n")) {
        const colon = line.indexOf(":");
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === "status") statusCode = Number(value.split(" ")[0]);
        else headers[name] = value;
      }
      res.writeHead(statusCode, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.on("close", () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    urlOf: (name) => `http://127.0.0.1:${port}/${name}`,
    requests: () => requests,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
