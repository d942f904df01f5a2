import { describe, expect, test } from "vitest";
import {
  isPrivateAddress,
  parseRepositoryUrl,
  validateBranch,
  validateSubfolder,
} from "./repository-url.js";

const open = {
  allowedSchemes: ["https", "http", "ssh", "file"] as const,
  allowPrivateHosts: false,
};
const key = (url: string) => parseRepositoryUrl(url, open).key;

describe("repository URLs", () => {
  test("one repository spelled many ways has one key", () => {
    const spellings = [
      "https://github.com/Acme/lib",
      "https://GitHub.com/Acme/lib.git",
      "https://github.com:443/Acme/lib/",
      "ssh://git@github.com/Acme/lib.git",
      "git@github.com:Acme/lib.git",
    ];
    expect(new Set(spellings.map(key))).toEqual(new Set(["github.com/Acme/lib"]));
    expect(key("https://github.com:8443/Acme/lib")).toBe("github.com:8443/Acme/lib");
    expect(key("file:///srv/git/lib.git/")).toBe("file:srv/git/lib");
  });

  test("scp-style URLs are ssh and kept as written for git", () => {
    expect(parseRepositoryUrl("git@host.example:team/repo.git", open)).toEqual({
      url: "git@host.example:team/repo.git",
      scheme: "ssh",
      host: "host.example",
      key: "host.example/team/repo",
    });
  });

  test.each([
    ["", /is required/],
    ["ftp://example.test/x", /scheme "ftp"/],
    ["ext::sh -c touch% /tmp/pwned", /without spaces/],
    ["https://user:pw@example.test/x", /must not contain credentials/],
    ["https://token@example.test/x", /must not contain credentials/],
    ["https://example.test/x?ref=1", /query or fragment/],
    ["https://example.test/", /no repository path/],
    ["-uhttps://example.test/x", /not starting with "-"/],
    ["file://server/share/x", /file:\/\/\/absolute\/path/],
  ])("%j is refused", (url, message) => {
    expect(() => parseRepositoryUrl(url, open)).toThrow(message);
  });

  test("schemes the deployment does not allow are refused, naming the allowed ones", () => {
    const rules = { allowedSchemes: ["https", "ssh"] as const, allowPrivateHosts: false };
    expect(() => parseRepositoryUrl("file:///srv/x", rules)).toThrow(
      /does not allow; allowed: https, ssh/,
    );
    expect(() => parseRepositoryUrl("http://example.test/x", rules)).toThrow(/"http"/);
  });

  test.each([
    "https://127.0.0.1/x",
    "https://localhost/x",
    "https://api.localhost/x",
    "http://169.254.169.254/latest",
    "https://10.1.2.3/x",
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://[fd00::1]/x",
    "git@192.168.1.10:x.git",
  ])("%s names a private host and is refused unless allowed", (url) => {
    expect(() => parseRepositoryUrl(url, open)).toThrow(/private or local network|local host/);
    expect(() => parseRepositoryUrl(url, { ...open, allowPrivateHosts: true })).not.toThrow();
  });

  test("public addresses are not private", () => {
    expect(isPrivateAddress("140.82.112.3")).toBe(false);
    expect(isPrivateAddress("2606:4700::1111")).toBe(false);
    expect(isPrivateAddress("100.64.0.1")).toBe(true);
  });
});

describe("branches and subfolders", () => {
  test("valid names pass; an empty branch means main", () => {
    expect(validateBranch("")).toBe("main");
    expect(validateBranch("release/2026.11")).toBe("release/2026.11");
    expect(validateSubfolder("/customers/acme/")).toBe("customers/acme");
    expect(validateSubfolder("")).toBe("");
  });

  test.each([
    "../x",
    "-x",
    "a..b",
    "a//b",
    "a.lock",
    "a/",
    ".hidden",
    "a b",
    "a@{1}",
    "x".repeat(201),
  ])("branch %j is refused", (branch) => {
    expect(() => validateBranch(branch)).toThrow(/is not a valid branch name/);
  });

  test.each(["a/../b", "./a", "a//b", ".git", "a b"])("subfolder %j is refused", (subfolder) => {
    expect(() => validateSubfolder(subfolder)).toThrow(/subfolder/);
  });
});
