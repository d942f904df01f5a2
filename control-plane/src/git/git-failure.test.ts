import { describe, expect, test } from "vitest";
import { describeGitFailure } from "./git-client.js";

// What an admin reads when a sync fails: git's stderr turned into what went wrong, without
// secrets. The host-key case matters most: git's last line alone reads "unreachable".
const changedHostKey = `@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Host key verification failed.
fatal: Could not read from remote repository.

Please make sure you have the correct access rights
and the repository exists.`;

describe("describeGitFailure", () => {
  test.each([
    ["ssh://git@git.example.com:2222/acme/lib.git", "git.example.com"],
    ["git@github.com:acme/lib.git", "github.com"],
  ])(
    "a changed SSH host key of %s names the host and what to do, not 'unreachable'",
    (url, host) => {
      const message = describeGitFailure(changedHostKey, { url, branch: "main" });
      expect(message).toContain(`the SSH host key of ${host} changed`);
      expect(message).toContain("bind the repository again");
      expect(message).not.toMatch(/not reachable/);
    },
  );

  test("a refused key is an authentication failure; a refused connection is unreachable", () => {
    const url = "ssh://git@git.example.com/acme/lib.git";
    expect(
      describeGitFailure(
        "git@git.example.com: Permission denied (publickey).\nfatal: Could not read from remote repository.",
        { url, branch: "main" },
      ),
    ).toMatch(/^authentication to ssh:\/\/git@git\.example\.com\/acme\/lib\.git failed/);
    expect(
      describeGitFailure(
        "ssh: connect to host git.example.com port 22: Connection refused\nfatal: Could not read from remote repository.",
        { url, branch: "main" },
      ),
    ).toMatch(/is not reachable or does not exist/);
  });

  test("an Authorization header never appears in the message", () => {
    const message = describeGitFailure(
      "fatal: unable to access 'https://h/r.git/': Authorization: Basic c2VjcmV0 rejected",
      { url: "https://h/r.git", branch: "main" },
    );
    expect(message).not.toContain("c2VjcmV0");
  });
});
