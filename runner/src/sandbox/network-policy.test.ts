import { describe, expect, test } from "vitest";
import {
  buildNetworkPolicy,
  deniedIPv4Ranges,
  hostInterfaceAddresses,
  NetworkHostError,
  validateNetworkHost,
} from "./network-policy.js";

describe("validateNetworkHost", () => {
  test("accepts names, wildcards, ports and public addresses, lowercased", () => {
    expect(validateNetworkHost("API.Halo.com")).toBe("api.halo.com");
    expect(validateNetworkHost("*.graph.microsoft.com")).toBe("*.graph.microsoft.com");
    expect(validateNetworkHost("host.example.com:443")).toBe("host.example.com:443");
    expect(validateNetworkHost("8.8.8.8")).toBe("8.8.8.8");
    expect(validateNetworkHost("1.1.1.1:853")).toBe("1.1.1.1:853");
    expect(validateNetworkHost("[2606:4700::1111]:443")).toBe("[2606:4700::1111]:443");
  });

  test.each([
    ["https://api.example.com", "not a URL"],
    ["api.example.com/v1", "not a path"],
    ["/etc/passwd", "not a path"],
    ["user@api.example.com", "not a path"],
    ["unix:/run/x.sock", "not a path"],
    ["localhost", "not allowed"],
    ["intranet", "at least two labels"],
    ["printer.local", "local or internal"],
    ["db.internal", "local or internal"],
    ["app.localhost", "local or internal"],
    ["*", "not allowed"],
    ["*.com", "too broad"],
    ["a.*.example.com", "at least two labels"],
    ["127.0.0.1", "loopback"],
    ["10.1.2.3:5432", "private"],
    ["169.254.169.254", "link-local"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["0.0.0.0", "reserved"],
    ["[::1]", "loopback"],
    ["[fd00::2]", "private"],
    ["[::ffff:127.0.0.1]", "private"],
    ["[fe80::1]:80", "link-local"],
    ["999.1.1.1", "not a valid IPv4"],
    ["example.com:0", "port must be 1 to 65535"],
    ["example.com:70000", "port must be 1 to 65535"],
    ["example.com:", 'must be "name"'],
    ["exa mple.com", "not a path"],
    ["-bad.example.com", "at least two labels"],
    ["", "1 to 260 characters"],
  ])("rejects %j (%s) and names it", (value, why) => {
    expect(() => validateNetworkHost(value)).toThrow(NetworkHostError);
    expect(() => validateNetworkHost(value)).toThrow(`network host ${JSON.stringify(value)}`);
    expect(() => validateNetworkHost(value)).toThrow(why);
  });
});

describe("buildNetworkPolicy", () => {
  test("no declared host means an empty network namespace and only the deny list", () => {
    const policy = buildNetworkPolicy({ workflowHosts: [], organizationHosts: [] });
    expect(policy.shareHostNetwork).toBe(false);
    expect(policy.allowNet).toEqual([]);
    expect(policy.denyNet).toEqual(expect.arrayContaining([...deniedIPv4Ranges]));
  });

  test("the workflow's hosts and the org's allow list are merged, deduplicated and sorted", () => {
    const policy = buildNetworkPolicy({
      workflowHosts: ["api.halo.com", "*.graph.microsoft.com"],
      organizationHosts: ["API.halo.com", "login.microsoftonline.com:443"],
    });
    expect(policy.shareHostNetwork).toBe(true);
    expect(policy.allowNet).toEqual([
      "*.graph.microsoft.com",
      "api.halo.com",
      "login.microsoftonline.com:443",
    ]);
  });

  test("the deny list covers loopback, private, link-local, CGNAT, multicast and 0.0.0.0", () => {
    const { denyNet } = buildNetworkPolicy({
      workflowHosts: ["a.example.com"],
      organizationHosts: [],
    });
    for (const entry of [
      "0.0.0.0/8",
      "10.0.0.0/8",
      "100.64.0.0/10",
      "127.0.0.0/8",
      "169.254.0.0/16",
      "172.16.0.0/12",
      "192.168.0.0/16",
      "198.18.0.0/15",
      "224.0.0.0/4",
      "240.0.0.0/4",
      "[::]",
      "[::1]",
    ]) {
      expect(denyNet).toContain(entry);
    }
    // Deno 2.9 refuses IPv6 CIDRs in --deny-net: one would make every execution fail to start.
    expect(denyNet.filter((entry) => entry.startsWith("[") && entry.includes("/"))).toEqual([]);
  });

  test("one invalid host fails the whole policy with its name", () => {
    expect(() =>
      buildNetworkPolicy({ workflowHosts: ["api.halo.com"], organizationHosts: ["10.0.0.5"] }),
    ).toThrow('network host "10.0.0.5"');
  });

  test("extra denied addresses are added as literals, IPv6 in brackets", () => {
    const policy = buildNetworkPolicy({
      workflowHosts: [],
      organizationHosts: [],
      extraDeniedAddresses: ["203.0.113.7", "fd00::2", "FE80::1"],
    });
    expect(policy.denyNet).toEqual(
      expect.arrayContaining(["203.0.113.7", "[fd00::2]", "[fe80::1]"]),
    );
    expect(() =>
      buildNetworkPolicy({ workflowHosts: [], organizationHosts: [], extraDeniedAddresses: ["x"] }),
    ).toThrow('denied address "x"');
  });

  test("this host's interface addresses exclude what the ranges already cover", () => {
    const addresses = hostInterfaceAddresses();
    expect(addresses).not.toContain("127.0.0.1");
    expect(addresses).not.toContain("::1");
    for (const address of addresses) expect(address).not.toContain("%");
  });
});
