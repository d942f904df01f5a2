import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { resolve as resolvePath } from "node:path";
import { deniedIPv4Ranges } from "@bifrost/sdk/host";
import { invalidArgument, permissionDenied } from "../errors.js";

/** Transports a binding may use. */
export type GitScheme = "https" | "http" | "ssh" | "file";
export const gitSchemes: readonly GitScheme[] = ["https", "http", "ssh", "file"];

/** A repository URL checked against the deployment's rules. */
export interface RepositoryUrl {
  /** What git is given: the URL as bound (scp-style ssh kept as written). */
  url: string;
  scheme: GitScheme;
  /** Host name or address; "" for file URLs. */
  host: string;
  /**
   * Scheme-independent identity of the repository, so https://github.com/acme/lib.git and
   * git@github.com:acme/lib are one repository: lower-case host, non-default port, path
   * without trailing "/" or ".git". Local repositories: "file:" + the absolute path.
   */
  key: string;
}

/** What the deployment allows repository URLs to be. */
export interface RepositoryUrlRules {
  allowedSchemes: readonly GitScheme[];
  /** Whether hosts on loopback, private, link-local and similar networks may be named. */
  allowPrivateHosts: boolean;
}

const defaultPorts: Record<string, string> = { https: "443", http: "80", ssh: "22" };
const scpStyle = /^([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+):(?!\/\/)(.+)$/;

const privateNetworks = new BlockList();
for (const range of deniedIPv4Ranges) {
  const [address, prefix] = range.split("/");
  privateNetworks.addSubnet(address as string, Number(prefix), "ipv4");
}
privateNetworks.addAddress("::", "ipv6");
privateNetworks.addAddress("::1", "ipv6");
privateNetworks.addSubnet("fc00::", 7, "ipv6"); // unique local
privateNetworks.addSubnet("fe80::", 10, "ipv6"); // link-local
// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry (isPrivateAddress).
// A ::ffff:0:0/96 rule here would match every IPv4 address: BlockList maps them into it.

/** Whether an IP address is on a network the control plane must not be pointed at. */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return privateNetworks.check(mapped[1] as string, "ipv4");
  const family = isIP(address);
  if (family === 0) return false;
  return privateNetworks.check(address, family === 4 ? "ipv4" : "ipv6");
}

function repositoryPathKey(path: string): string {
  return path
    .replace(/\/+$/, "")
    .replace(/\.git$/, "")
    .replace(/^\/+/, "");
}

/**
 * Parses and checks a repository URL: https://, http://, ssh://, scp-style user@host:path or
 * file:///absolute/path, within the allowed schemes. Credentials in the URL are refused (they
 * belong in the binding's encrypted credential), as are queries, fragments and hosts on
 * private networks unless the deployment allows them.
 */
export function parseRepositoryUrl(raw: string, rules: RepositoryUrlRules): RepositoryUrl {
  const quoted = JSON.stringify(raw);
  const url = raw.trim();
  if (url === "") throw invalidArgument("repository_url is required");
  if (url.length > 2048 || /\s/.test(url) || url.startsWith("-")) {
    throw invalidArgument(
      `repository_url ${quoted} must be a URL of at most 2048 characters without spaces, not starting with "-"`,
    );
  }
  let parsed: RepositoryUrl;
  const scp = scpStyle.exec(url);
  if (scp && !url.includes("://")) {
    const host = (scp[2] as string).toLowerCase();
    parsed = { url, scheme: "ssh", host, key: `${host}/${repositoryPathKey(scp[3] as string)}` };
  } else {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw invalidArgument(
        `repository_url ${quoted} is not a URL; use https://host/path, ssh://user@host/path, user@host:path or file:///path`,
      );
    }
    const scheme = u.protocol.slice(0, -1) as GitScheme;
    if (!gitSchemes.includes(scheme)) {
      throw invalidArgument(
        `repository_url ${quoted} uses scheme "${scheme}"; allowed: ${rules.allowedSchemes.join(", ")}`,
      );
    }
    if (u.search || u.hash) {
      throw invalidArgument(`repository_url ${quoted} must not have a query or fragment`);
    }
    if (u.password || (u.username && scheme !== "ssh")) {
      throw invalidArgument(
        `repository_url ${quoted} must not contain credentials; set the binding's credential instead`,
      );
    }
    if (scheme === "file") {
      if (u.host) throw invalidArgument(`repository_url ${quoted} must be file:///absolute/path`);
      const path = resolvePath(decodeURIComponent(u.pathname));
      parsed = { url, scheme, host: "", key: `file:${repositoryPathKey(path)}` };
    } else {
      const host = u.hostname.toLowerCase().replace(/^\[|\]$/g, "");
      if (!host) throw invalidArgument(`repository_url ${quoted} has no host`);
      const port = u.port && u.port !== defaultPorts[scheme] ? `:${u.port}` : "";
      const path = repositoryPathKey(decodeURIComponent(u.pathname));
      if (!path) throw invalidArgument(`repository_url ${quoted} has no repository path`);
      parsed = { url, scheme, host, key: `${host}${port}/${path}` };
    }
  }
  if (!rules.allowedSchemes.includes(parsed.scheme)) {
    throw invalidArgument(
      `repository_url ${quoted} uses scheme "${parsed.scheme}", which this deployment does not allow; allowed: ${rules.allowedSchemes.join(", ")}`,
    );
  }
  if (!rules.allowPrivateHosts && parsed.host) {
    if (parsed.host === "localhost" || parsed.host.endsWith(".localhost")) {
      throw permissionDenied(`repository_url ${quoted} names a local host, which is not allowed`);
    }
    if (isPrivateAddress(parsed.host)) {
      throw permissionDenied(
        `repository_url ${quoted} names an address on a private or local network, which is not allowed`,
      );
    }
  }
  return parsed;
}

/**
 * Resolves the URL's host and refuses it when any address is on a private network (unless
 * allowed), so a public-looking name cannot point the control plane at internal services.
 * Checked at bind time and before every fetch; git resolves again itself, so this narrows
 * rather than closes DNS rebinding — redirects are refused separately.
 */
export async function assertPublicHost(
  repository: RepositoryUrl,
  rules: RepositoryUrlRules,
): Promise<void> {
  if (rules.allowPrivateHosts || !repository.host || isIP(repository.host)) return;
  let addresses: Array<{ address: string }>;
  try {
    addresses = await lookup(repository.host, { all: true });
  } catch {
    return; // unresolvable: git reports the host as unreachable
  }
  const inside = addresses.find((a) => isPrivateAddress(a.address));
  if (inside) {
    throw permissionDenied(
      `repository host "${repository.host}" resolves to ${inside.address}, on a private or local network, which is not allowed`,
    );
  }
}

/** Checks a branch name (git check-ref-format rules, a safe subset). */
export function validateBranch(raw: string): string {
  const branch = raw === "" ? "main" : raw;
  const quoted = JSON.stringify(branch);
  const ok =
    branch.length <= 200 &&
    /^[A-Za-z0-9._/@+-]+$/.test(branch) &&
    !branch.startsWith("-") &&
    !branch.startsWith("/") &&
    !branch.endsWith("/") &&
    !branch.endsWith(".") &&
    !branch.endsWith(".lock") &&
    !branch.includes("..") &&
    !branch.includes("//") &&
    !branch.includes("@{") &&
    !branch.split("/").some((part) => part.startsWith("."));
  if (!ok) {
    throw invalidArgument(
      `branch ${quoted} is not a valid branch name: use letters, digits, ".", "_", "-", "+", "@" and "/" (at most 200), no "..", "//", "@{", leading "-" or ".", or trailing "/", "." or ".lock"`,
    );
  }
  return branch;
}

/** Checks a subfolder and returns it without surrounding slashes ("" = the whole tree). */
export function validateSubfolder(raw: string): string {
  const subfolder = raw.replace(/^\/+|\/+$/g, "");
  if (subfolder === "") return "";
  const quoted = JSON.stringify(raw);
  const segments = subfolder.split("/");
  const ok =
    subfolder.length <= 512 &&
    segments.every((s) => /^[A-Za-z0-9_@-][A-Za-z0-9._@-]*$/.test(s) && s.length <= 128);
  if (!ok) {
    throw invalidArgument(
      `subfolder ${quoted} must be a relative folder path of letters, digits, ".", "_", "-" and "@" (no "..", no empty or "." segments)`,
    );
  }
  return subfolder;
}
