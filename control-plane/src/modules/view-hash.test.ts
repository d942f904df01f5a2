import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import {
  addSum,
  bytesToSum,
  contentHashOf,
  entryHash,
  subtractSum,
  sumToBytes,
  viewFingerprint,
  zeroSum,
} from "./view-hash.js";

const max = (1n << 256n) - 1n;
const pairs: Array<[string, string]> = [
  ["shared/halopsa.ts", contentHashOf("export const who = 'global';")],
  ["shared/graph.ts", contentHashOf("export const graph = 1;")],
  ["workflows/onboard.ts", contentHashOf("import 'shared/halopsa.ts';")],
  ["config.json", contentHashOf("{}")],
];
const sumOf = (entries: Array<[string, string]>) =>
  entries.reduce((sum, [path, hash]) => addSum(sum, entryHash(path, hash)), zeroSum);

describe("entryHash", () => {
  test("is the SHA-256 of path, NUL and content hash read as a 256-bit integer", () => {
    const [path, hash] = pairs[0] as [string, string];
    const digest = createHash("sha256").update(`${path}\u0000${hash}`).digest("hex");
    expect(entryHash(path, hash)).toBe(BigInt(`0x${digest}`));
  });

  test("separates path from hash, so moving characters across the boundary changes it", () => {
    expect(entryHash("ab", "c")).not.toBe(entryHash("a", "bc"));
  });
});

describe("sums", () => {
  test("the sum of a set is the same in every order", () => {
    const forward = sumOf(pairs);
    expect(sumOf([...pairs].reverse())).toBe(forward);
    expect(sumOf([pairs[2], pairs[0], pairs[3], pairs[1]] as Array<[string, string]>)).toBe(
      forward,
    );
  });

  test("adding then subtracting every entry returns to zero", () => {
    let sum = sumOf(pairs);
    for (const [path, hash] of pairs) sum = subtractSum(sum, entryHash(path, hash));
    expect(sum).toBe(zeroSum);
  });

  test("sums wrap modulo 2^256 and never go negative", () => {
    expect(addSum(max, 1n)).toBe(0n);
    expect(subtractSum(0n, 1n)).toBe(max);
    expect(addSum(max, max)).toBe(max - 1n);
  });
});

describe("bytes", () => {
  test.each([0n, 1n, 255n, 256n, max, sumOf(pairs)])(
    "the sum %s round-trips through 32 bytes",
    (sum) => {
      const bytes = sumToBytes(sum);
      expect(bytes).toHaveLength(32);
      expect(bytesToSum(bytes)).toBe(sum);
    },
  );

  test("zero is 32 zero bytes, as module_scope_states.view_sum starts out", () => {
    expect(sumToBytes(zeroSum).equals(Buffer.alloc(32))).toBe(true);
  });

  test("empty bytes read as zero", () => {
    expect(bytesToSum(new Uint8Array())).toBe(0n);
  });
});

describe("viewFingerprint", () => {
  test("is equal for equal multisets, however the sum is split between global and organization", () => {
    const whole = sumOf(pairs);
    const globalPart = sumOf(pairs.slice(0, 2));
    const orgPart = sumOf(pairs.slice(2));
    expect(viewFingerprint(globalPart, orgPart)).toBe(viewFingerprint(whole, zeroSum));
    expect(viewFingerprint(orgPart, globalPart)).toBe(viewFingerprint(zeroSum, whole));
  });

  test("differs when an entry is missing, added twice, or has other content", () => {
    const base = viewFingerprint(sumOf(pairs), zeroSum);
    const first = pairs[0] as [string, string];
    expect(viewFingerprint(sumOf(pairs.slice(1)), zeroSum)).not.toBe(base);
    expect(viewFingerprint(sumOf([...pairs, first]), zeroSum)).not.toBe(base);
    const changed: Array<[string, string]> = [
      [first[0], contentHashOf("other")],
      ...pairs.slice(1),
    ];
    expect(viewFingerprint(sumOf(changed), zeroSum)).not.toBe(base);
  });

  test("is 64 lowercase hex characters and does not expose the sum", () => {
    const sum = sumOf(pairs);
    const fingerprint = viewFingerprint(sum, zeroSum);
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint).not.toBe(sumToBytes(sum).toString("hex"));
  });

  test("of an empty view is a fixed value", () => {
    expect(viewFingerprint(zeroSum, zeroSum)).toBe(
      createHash("sha256").update("bifrost.view.v1\u0000").update(Buffer.alloc(32)).digest("hex"),
    );
  });
});

describe("contentHashOf", () => {
  test.each(["", "export {};", "ü and 日本", "a\u0000b"])(
    "is the lowercase hex SHA-256 of the UTF-8 of %j",
    (content) => {
      expect(contentHashOf(content)).toBe(
        createHash("sha256").update(Buffer.from(content, "utf8")).digest("hex"),
      );
      expect(contentHashOf(content)).toMatch(/^[0-9a-f]{64}$/);
    },
  );

  test("of the empty string is the well-known SHA-256 of nothing", () => {
    expect(contentHashOf("")).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
  });
});
