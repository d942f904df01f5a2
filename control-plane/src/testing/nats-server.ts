import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, Socket } from "node:net";

/** A nats-server with JetStream that a test owns, so it may stop and restart it. */
export interface OwnNatsServer {
  url: string;
  port: number;
  /** Starts it (again) on the same port and store directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** SIGTERM, then waits for the exit (JetStream flushes its file store). */
  stop(): Promise<void>;
}

/** Finds a free loopback port (bind to 0, read it, release it). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = new Socket();
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.connect(port, "127.0.0.1");
  });

/** Prepares (does not start) a nats-server on a free port with its store in `storeDir`. */
export async function ownNatsServer(options: {
  storeDir: string;
  binary?: string;
}): Promise<OwnNatsServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = "";
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    async start() {
      if (child) return;
      const started = spawn(
        options.binary ?? "/usr/sbin/nats-server",
        ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", options.storeDir],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      started.stdout?.on("data", (chunk) => {
        output += chunk;
      });
      started.stderr?.on("data", (chunk) => {
        output += chunk;
      });
      child = started;
      for (let i = 0; i < 200; i++) {
        if (started.exitCode !== null) break;
        if (await canConnect(port)) return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`nats-server did not start on port ${port}:\n${output}`);
    },
    async stop() {
      const running = child;
      if (!running) return;
      child = undefined;
      if (running.exitCode === null) {
        running.kill("SIGTERM");
        await once(running, "exit");
      }
    },
  };
}
