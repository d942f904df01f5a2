import { createHmac } from "node:crypto";
import { describe, expect, test } from "vitest";
import { contentHashOf } from "../modules/view-hash.js";
import { parseLsTree, type TreeEntry } from "./git-client.js";
import { blobsToRead, classifyTree, isBinary, planReplacement } from "./tree-plan.js";
import { verifySignature } from "./webhook-server.js";

const blob = (path: string, object: string, size = 10): TreeEntry => ({
  path,
  mode: "100644",
  type: "blob",
  object,
  size,
});

describe("classifying a tree", () => {
  test("keeps module files under the subfolder and says why the rest are skipped", () => {
    const { candidates, skipped } = classifyTree(
      [
        blob("src/a.ts", "1"),
        blob("src/deep/b.json", "2"),
        blob("README.md", "3"),
        { ...blob("src/link.ts", "4"), mode: "120000" },
        { path: "src/sub", mode: "160000", type: "commit", object: "5", size: null },
        blob("src/big.ts", "6", 2_000),
        blob("src/.env.ts", "7"),
      ],
      { subfolder: "src", maxBytes: 1_000 },
    );
    expect(candidates).toEqual([
      { repoPath: "src/a.ts", modulePath: "a.ts", blob: "1" },
      { repoPath: "src/deep/b.json", modulePath: "deep/b.json", blob: "2" },
    ]);
    expect(skipped.map((s) => [s.path, s.reason])).toEqual([
      ["README.md", "outside_subfolder"],
      ["src/link.ts", "symlink"],
      ["src/sub", "submodule"],
      ["src/big.ts", "oversized"],
      ["src/.env.ts", "invalid_path"],
    ]);
  });
});

describe("planning a replacement", () => {
  const current = new Map([
    ["same-blob.ts", { contentHash: "h1", sizeBytes: 1, gitBlob: "b1" }],
    ["same-text.ts", { contentHash: contentHashOf("text"), sizeBytes: 4, gitBlob: null }],
    ["changed.ts", { contentHash: "old", sizeBytes: 3, gitBlob: "b3-old" }],
    ["gone.ts", { contentHash: "h4", sizeBytes: 1, gitBlob: "b4" }],
    ["now-binary.ts", { contentHash: "h5", sizeBytes: 1, gitBlob: "b5-old" }],
  ]);
  const candidates = [
    { repoPath: "same-blob.ts", modulePath: "same-blob.ts", blob: "b1" },
    { repoPath: "same-text.ts", modulePath: "same-text.ts", blob: "b2" },
    { repoPath: "changed.ts", modulePath: "changed.ts", blob: "b3" },
    { repoPath: "new.ts", modulePath: "new.ts", blob: "b6" },
    { repoPath: "now-binary.ts", modulePath: "now-binary.ts", blob: "b5" },
  ];

  test("reads only blobs a module was not written from", () => {
    expect(blobsToRead(candidates, current)).toEqual(["b2", "b3", "b6", "b5"]);
  });

  test("writes changed content, records blob ids of equal content, deletes the rest", () => {
    const contents = new Map([
      ["b2", Buffer.from("text")],
      ["b3", Buffer.from("new text")],
      ["b6", Buffer.from("brand new")],
      ["b5", Buffer.from([0xff, 0xfe, 0x00])],
    ]);
    const plan = planReplacement(candidates, current, contents);
    expect(plan.replacement.writes).toEqual([
      { path: "changed.ts", content: "new text", gitBlob: "b3" },
      { path: "new.ts", content: "brand new", gitBlob: "b6" },
    ]);
    expect(plan.replacement.blobs).toEqual([{ path: "same-text.ts", gitBlob: "b2" }]);
    expect(plan.replacement.deletes).toEqual(["gone.ts", "now-binary.ts"]);
    expect(plan.unchanged).toBe(2);
    expect(plan.skipped).toEqual([
      { path: "now-binary.ts", reason: "binary", detail: "not UTF-8 text" },
    ]);
  });

  test("text with NUL or invalid UTF-8 is binary", () => {
    expect(isBinary(Buffer.from("plain ✓ text"))).toBe(false);
    expect(isBinary(Buffer.from([0x61, 0x00]))).toBe(true);
    expect(isBinary(Buffer.from([0xc3, 0x28]))).toBe(true);
  });
});

describe("git output and webhook signatures", () => {
  test("ls-tree records with tabs and spaces in names parse exactly", () => {
    const out = [
      "100644 blob aaaa      12\tdir/a file.ts",
      "160000 commit bbbb       -\tvendor/lib",
      "",
    ].join("\u0000");
    expect(parseLsTree(out)).toEqual([
      { path: "dir/a file.ts", mode: "100644", type: "blob", object: "aaaa", size: 12 },
      { path: "vendor/lib", mode: "160000", type: "commit", object: "bbbb", size: null },
    ]);
  });

  test("a signature verifies only with the right secret over the exact body", () => {
    const body = Buffer.from('{"ref":"refs/heads/main"}');
    const good = `sha256=${createHmac("sha256", "s").update(body).digest("hex")}`;
    expect(verifySignature("s", body, good)).toBe(true);
    expect(verifySignature("t", body, good)).toBe(false);
    expect(verifySignature("s", Buffer.from(`${body} `), good)).toBe(false);
    expect(verifySignature("s", body, undefined)).toBe(false);
    expect(verifySignature("s", body, "sha256=zz")).toBe(false);
    expect(verifySignature("s", body, good.replace("sha256=", "sha1="))).toBe(false);
  });
});
