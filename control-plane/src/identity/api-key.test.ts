import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import { apiKeyMatches, apiKeyPrefix, generateApiKey, hashApiKey, parseApiKey } from "./api-key.js";

const wellFormed = `bfk_0123456789abcdef_${"A".repeat(43)}`;

describe("generateApiKey", () => {
  test("makes keys shaped bfk_<16 hex>_<43 base64url> whose lookup is the hex part", () => {
    const { key, lookup } = generateApiKey();
    expect(key).toMatch(/^bfk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(key.slice(4, 20)).toBe(lookup);
  });

  test("makes a different key each time", () => {
    const keys = new Set(Array.from({ length: 50 }, () => generateApiKey().key));
    expect(keys.size).toBe(50);
  });

  test("makes keys that parse back to themselves", () => {
    const generated = generateApiKey();
    expect(parseApiKey(generated.key)).toEqual(generated);
  });
});

describe("parseApiKey", () => {
  test("parses a well-formed key into its lookup and the whole key", () => {
    expect(parseApiKey(wellFormed)).toEqual({ lookup: "0123456789abcdef", key: wellFormed });
  });

  test.each([
    ["empty", ""],
    ["wrong prefix", `bfx_0123456789abcdef_${"A".repeat(43)}`],
    ["no prefix", `0123456789abcdef_${"A".repeat(43)}`],
    ["uppercase lookup", `bfk_0123456789ABCDEF_${"A".repeat(43)}`],
    ["short lookup", `bfk_0123456789abcde_${"A".repeat(43)}`],
    ["non-hex lookup", `bfk_0123456789abcdeg_${"A".repeat(43)}`],
    ["short secret", `bfk_0123456789abcdef_${"A".repeat(42)}`],
    ["long secret", `bfk_0123456789abcdef_${"A".repeat(44)}`],
    ["padded secret", `bfk_0123456789abcdef_${"A".repeat(42)}=`],
    ["standard base64 secret", `bfk_0123456789abcdef_${"A".repeat(42)}+`],
    ["leading space", ` ${wellFormed}`],
    ["trailing newline", `${wellFormed}\n`],
    ["Bearer prefix", `Bearer ${wellFormed}`],
  ])("rejects a key with %s", (_what, key) => {
    expect(parseApiKey(key)).toBeUndefined();
  });
});

describe("hashApiKey and apiKeyMatches", () => {
  test("hashes the whole key with SHA-256", () => {
    expect(hashApiKey(wellFormed).equals(createHash("sha256").update(wellFormed).digest())).toBe(
      true,
    );
  });

  test("matches the key its hash was made from", () => {
    const { key } = generateApiKey();
    expect(apiKeyMatches(key, hashApiKey(key))).toBe(true);
  });

  test("does not match another key with the same lookup", () => {
    const { key, lookup } = generateApiKey();
    const other = `bfk_${lookup}_${"B".repeat(43)}`;
    expect(apiKeyMatches(other, hashApiKey(key))).toBe(false);
  });

  test("does not match a stored hash of another length, and does not throw for it", () => {
    const { key } = generateApiKey();
    expect(apiKeyMatches(key, new Uint8Array())).toBe(false);
    expect(apiKeyMatches(key, hashApiKey(key).subarray(0, 31))).toBe(false);
    expect(apiKeyMatches(key, Buffer.concat([hashApiKey(key), Buffer.alloc(1)]))).toBe(false);
  });
});

describe("apiKeyPrefix", () => {
  test("is the non-secret start of the key", () => {
    expect(apiKeyPrefix("0123456789abcdef")).toBe("bfk_0123456789abcdef");
    expect(wellFormed.startsWith(apiKeyPrefix("0123456789abcdef"))).toBe(true);
  });
});
