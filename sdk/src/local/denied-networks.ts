// The addresses workflow code never reaches, part of the execution contract
// (docs/execution-contract.md; research/deno-sandbox.md): the runner's sandbox and the local
// runner pass them to Deno's --deny-net, which checks them after DNS resolution.

/**
 * IPv4 ranges never reachable from tenant code: "this network", RFC 1918, CGNAT, loopback,
 * link-local (cloud metadata), IETF assignments, the documentation and benchmark nets (hosts
 * in labs and CI use them for real interfaces, this one included), multicast and reserved.
 */
export const deniedIPv4Ranges = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
] as const;

/**
 * Deno 2.9 rejects IPv6 CIDRs in `--deny-net` but accepts single literals: unspecified,
 * loopback and the AWS IPv6 metadata endpoint. IPv6 sockets are refused by seccomp anyway;
 * these stay as a second layer should the filter ever be relaxed.
 */
export const deniedIPv6Literals = ["[::]", "[::1]", "[fd00:ec2::254]"] as const;

/** Everything above, as one --deny-net list. */
export const deniedNetworks: readonly string[] = [...deniedIPv4Ranges, ...deniedIPv6Literals];
