import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A real OpenSSH server on loopback serving git over SSH to one key, for the git binding
 * tests (Debian's openssh-server, installed by `scripts/system-packages.sh --for-tests`).
 */
export interface TestGitSshServer {
  /** ssh://user@127.0.0.1:port/<absolute path of a bare repository>. */
  urlOf(repositoryPath: string): string;
  /** The private key the server accepts (OpenSSH format). */
  authorizedKey: string;
  /** A well-formed private key the server does not accept. */
  strangerKey: string;
  /** Restarts the server with a new host key, as a man in the middle would present. */
  replaceHostKey(): Promise<void>;
  close(): Promise<void>;
}

const sshd = "/usr/sbin/sshd";

async function generateKey(path: string): Promise<string> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "bifrost-test", "-f", path]);
  return readFile(path, "utf8");
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function untilListening(port: number, daemon: ChildProcess, log: () => string) {
  for (let i = 0; i < 100; i++) {
    if (daemon.exitCode !== null) throw new Error(`sshd exited: ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`sshd did not listen on ${port} within 5 s: ${log()}`);
}

export async function startGitSshServer(): Promise<TestGitSshServer> {
  const dir = await mkdtemp(join(tmpdir(), "bifrost-git-sshd-"));
  // sshd refuses to start without its privilege-separation directory.
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 }).catch(() => {});
  const authorizedKey = await generateKey(join(dir, "client"));
  const strangerKey = await generateKey(join(dir, "stranger"));
  const publicKey = await readFile(join(dir, "client.pub"), "utf8");
  // `restrict`: no pty, no forwarding; git only needs the command channel.
  await writeFile(join(dir, "authorized_keys"), `restrict ${publicKey}`, { mode: 0o600 });
  const port = await freePort();
  const user = userInfo().username;
  let daemon: ChildProcess | undefined;
  let hostKeys = 0;

  const start = async () => {
    hostKeys++;
    const hostKey = join(dir, `host-${hostKeys}`);
    await generateKey(hostKey);
    const config = join(dir, "sshd_config");
    await writeFile(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        `AllowUsers ${user}`,
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UsePAM no",
        "PidFile none",
        "LogLevel ERROR",
        "",
      ].join("\n"),
    );
    let output = "";
    const child = spawn(sshd, ["-D", "-e", "-f", config], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    daemon = child;
    await untilListening(port, child, () => output);
  };

  const stop = async () => {
    const child = daemon;
    daemon = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  };

  await start();
  return {
    urlOf: (repositoryPath) => `ssh://${user}@127.0.0.1:${port}${repositoryPath}`,
    authorizedKey,
    strangerKey,
    async replaceHostKey() {
      await stop();
      await start();
    },
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
