import { BlockList, isIPv4, isIPv6 } from "node:net";
import { networkInterfaces } from "node:os";

// What a sandbox may reach. Two layers: with no declared host the sandbox has an empty
// network namespace (nothing to reach, whatever Deno allows); with one it shares the host's
// namespace and Deno's --allow-net (names) plus --deny-net (addresses, checked after DNS since
// 2.8.1) decide, and the seccomp filter (seccomp.ts) turns IPv6 off.
//
// Residual risk with a declared host: (1) Deno 2.9 cannot deny IPv6 ranges, only literals;
// that is why IPv6 is off — a name resolving to ::ffff:127.0.0.1 reached loopback past the
// IPv4 deny list before it was. (2) Public addresses of our own infrastructure other than
// this host's interfaces (a load balancer, a NAT gateway) are not known here: the caller
// must add them through `extraDeniedAddresses`. (3) The deny list is enforced by Deno
// alone: a Deno escape (native code) shares the host network. An egress proxy or nftables
// rules on a veth of a per-sandbox namespace would close both (2) and (3).

/** What one execution may reach over the network, as Deno flags and a namespace choice. */
export interface NetworkPolicy {
  /** Normalised declared hosts for `--allow-net` (the SDK socket is added by the command). */
  allowNet: string[];
  /** Addresses and IPv4 ranges for `--deny-net`, checked by Deno after DNS resolution. */
  denyNet: string[];
  /**
   * True when at least one host is declared: the sandbox then shares the host's network
   * namespace, otherwise it gets an empty one (loopback only, nothing listening).
   */
  shareHostNetwork: boolean;
}

// The lists themselves are part of the execution contract, kept once in the SDK's host
// module so the local runner (bifrost-local) denies exactly what the platform denies.
import { deniedIPv4Ranges, deniedIPv6Literals } from "@bifrost/sdk/host";

export { deniedIPv4Ranges, deniedIPv6Literals };

// Two lists: Node's BlockList matches IPv4 addresses against IPv4-mapped IPv6 rules, so one
// list holding ::ffff:0:0/96 would call every IPv4 address private.
const privateIPv4 = new BlockList();
for (const range of deniedIPv4Ranges) {
  const [network, prefix] = range.split("/") as [string, string];
  privateIPv4.addSubnet(network, Number(prefix), "ipv4");
}
const privateIPv6 = new BlockList();
for (const [network, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["::ffff:0:0", 96],
  ["64:ff9b::", 96],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  privateIPv6.addSubnet(network, prefix, "ipv6");
}

const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const hostNamePattern = new RegExp(`^(?:\\*\\.)?(?:${label}\\.)+${label}$`);
const reservedSuffixes = [".localhost", ".local", ".internal", ".localdomain", ".home.arpa"];

/** Thrown for a declared host that cannot be turned into a safe `--allow-net` entry. */
export class NetworkHostError extends Error {
  override name = "NetworkHostError";
}

/**
 * Checks one declared host and returns its normalised `--allow-net` form (lowercase). Valid:
 * `api.example.com`, `*.example.com`, `api.example.com:8443`, a public IPv4 address, a public
 * `[IPv6]`, each with an optional port. Rejected, with the value named: URLs, paths, user
 * info, single-label and reserved names ("localhost", "*.local", "*.internal"), bare "*",
 * private, loopback, link-local and other non-public addresses.
 */
export function validateNetworkHost(value: string): string {
  const quoted = JSON.stringify(value);
  const fail = (why: string): never => {
    throw new NetworkHostError(`network host ${quoted} ${why}`);
  };
  if (value.length === 0 || value.length > 260) fail("must be 1 to 260 characters");
  if (value.includes("://")) fail('must be a host name such as "api.example.com", not a URL');
  if (/[/\\?#@\s]/.test(value) || value.startsWith("unix:")) {
    fail('must be a host name such as "api.example.com", not a path, URL or socket');
  }
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(value);
  const plain = bracketed ? null : /^([^:]+)(?::(\d+))?$/.exec(value);
  if (!bracketed && !plain) fail('must be "name", "*.name", "name:port" or "[ipv6]:port"');
  const host = ((bracketed ?? plain) as RegExpExecArray)[1] as string;
  const port = ((bracketed ?? plain) as RegExpExecArray)[2];
  if (port !== undefined && (!/^[1-9]\d{0,4}$/.test(port) || Number(port) > 65535)) {
    fail(`has port ${JSON.stringify(port)}; a port must be 1 to 65535`);
  }
  const suffix = port === undefined ? "" : `:${port}`;
  if (bracketed) {
    if (!isIPv6(host)) fail("is not a valid IPv6 address");
    if (privateIPv6.check(host, "ipv6")) fail("is a loopback, private or link-local address");
    return `[${host.toLowerCase()}]${suffix}`;
  }
  if (isIPv4(host)) {
    if (privateIPv4.check(host, "ipv4")) {
      fail("is a loopback, private, link-local or reserved address; only public hosts are allowed");
    }
    return `${host}${suffix}`;
  }
  const name = host.toLowerCase();
  if (name === "*" || name === "localhost") fail("is not allowed; name the public host");
  if (/^[\d.]+$/.test(name)) fail("is not a valid IPv4 address");
  if (name.startsWith("*.") && name.split(".").length < 3) {
    fail('is too broad; a wildcard needs a registered domain below it ("*.example.com")');
  }
  if (name.length > 253 || !hostNamePattern.test(name)) {
    fail('must be a DNS name with at least two labels ("api.example.com" or "*.example.com")');
  }
  if (reservedSuffixes.some((reserved) => `.${name}`.endsWith(reserved))) {
    fail("is a local or internal name; only public hosts are allowed");
  }
  return `${name}${suffix}`;
}

/**
 * The policy for one execution: the union of the workflow's declared hosts and the
 * organization's allow list, each validated (the first invalid one throws, naming it), plus
 * the fixed deny list and any extra addresses to deny (this host's own, from
 * `hostInterfaceAddresses`, so a service bound to 0.0.0.0 is not reachable through them).
 */
export function buildNetworkPolicy(input: {
  workflowHosts: readonly string[];
  organizationHosts: readonly string[];
  extraDeniedAddresses?: readonly string[];
}): NetworkPolicy {
  const allowNet = [
    ...new Set([...input.workflowHosts, ...input.organizationHosts].map(validateNetworkHost)),
  ].sort();
  const extra = (input.extraDeniedAddresses ?? []).map((address) => {
    if (isIPv4(address)) return address;
    if (isIPv6(address)) return `[${address.toLowerCase()}]`;
    throw new NetworkHostError(`denied address ${JSON.stringify(address)} is not an IP address`);
  });
  const denyNet = [
    ...new Set<string>([...deniedIPv4Ranges, ...deniedIPv6Literals, "localhost", ...extra]),
  ];
  return { allowNet, denyNet, shareHostNetwork: allowNet.length > 0 };
}

/**
 * This host's own interface addresses that the fixed ranges do not already cover (a public
 * IPv4, any IPv6 such as a ULA or link-local one), without zone ids. A service listening on
 * 0.0.0.0 or [::] answers on these, so they belong on every deny list.
 */
export function hostInterfaceAddresses(): string[] {
  const addresses = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) {
      const address = entry.address.split("%")[0] as string;
      if (entry.family === "IPv4" && privateIPv4.check(address, "ipv4")) continue;
      if (address === "::" || address === "::1") continue;
      addresses.add(address);
    }
  }
  return [...addresses].sort();
}
