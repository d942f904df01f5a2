import { describe, expect, test } from "vitest";
import { openSecret, parseSecretKeyring, type SealedSecret, sealSecret } from "./secret-cipher.js";

const key = (fill: number) => Buffer.alloc(32, fill).toString("base64");
const keyring = parseSecretKeyring(`k1:${key(1)},k2:${key(2)}`);
const context = "bifrost.secret.v1\u0000org-a\u0000halo.token";

/** A copy of a sealed value with one byte of `field` flipped. */
function tampered(sealed: SealedSecret, field: "nonce" | "ciphertext", index = 0): SealedSecret {
  const bytes = Buffer.from(sealed[field]);
  bytes[index] = (bytes[index] as number) ^ 0x01;
  return { ...sealed, [field]: bytes };
}

describe("sealSecret and openSecret", () => {
  test.each(["", "hunter2", "ü and 日本 and 🔑", "x".repeat(64 * 1024)])(
    "a value round-trips: %#",
    (plaintext) => {
      const sealed = sealSecret(keyring, plaintext, context);
      expect(openSecret(keyring, sealed, context)).toBe(plaintext);
    },
  );

  test("seals with the active key, a 12-byte nonce and a 16-byte tag", () => {
    const sealed = sealSecret(keyring, "abc", context);
    expect(sealed.keyId).toBe("k1");
    expect(sealed.nonce).toHaveLength(12);
    expect(sealed.ciphertext).toHaveLength(3 + 16);
    expect(sealed.ciphertext.includes(Buffer.from("abc"))).toBe(false);
  });

  test("sealing the same value twice gives different nonces and ciphertexts", () => {
    const a = sealSecret(keyring, "same", context);
    const b = sealSecret(keyring, "same", context);
    expect(a.nonce.equals(b.nonce)).toBe(false);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
  });

  test("a value sealed with an older key still opens after the active key changes", () => {
    const sealed = sealSecret(keyring, "old", context);
    const rotated = parseSecretKeyring(`k1:${key(1)},k2:${key(2)}`, "k2");
    expect(openSecret(rotated, sealed, context)).toBe("old");
    expect(sealSecret(rotated, "new", context).keyId).toBe("k2");
  });

  test("a tampered ciphertext fails to open", () => {
    const sealed = sealSecret(keyring, "secret value", context);
    expect(() => openSecret(keyring, tampered(sealed, "ciphertext"), context)).toThrow();
  });

  test("a tampered authentication tag fails to open", () => {
    const sealed = sealSecret(keyring, "secret value", context);
    const tagByte = sealed.ciphertext.length - 1;
    expect(() => openSecret(keyring, tampered(sealed, "ciphertext", tagByte), context)).toThrow();
  });

  test("a truncated ciphertext fails to open", () => {
    const sealed = sealSecret(keyring, "secret value", context);
    const cut = {
      ...sealed,
      ciphertext: sealed.ciphertext.subarray(0, sealed.ciphertext.length - 1),
    };
    expect(() => openSecret(keyring, cut, context)).toThrow();
  });

  test("a tampered nonce fails to open", () => {
    const sealed = sealSecret(keyring, "secret value", context);
    expect(() => openSecret(keyring, tampered(sealed, "nonce"), context)).toThrow();
  });

  test("a value copied to another scope or name fails to open there", () => {
    const sealed = sealSecret(keyring, "secret value", context);
    expect(() =>
      openSecret(keyring, sealed, "bifrost.secret.v1\u0000org-b\u0000halo.token"),
    ).toThrow();
    expect(() => openSecret(keyring, sealed, "bifrost.secret.v1\u0000org-a\u0000other")).toThrow();
  });

  test("a value sealed under one key id does not open under another key", () => {
    const sealed = sealSecret(keyring, "secret value", context);
    expect(() => openSecret(keyring, { ...sealed, keyId: "k2" }, context)).toThrow();
  });

  test("a value sealed with a key id the keyring does not know fails, naming the id", () => {
    const sealed = sealSecret(keyring, "secret value", context);
    expect(() => openSecret(keyring, { ...sealed, keyId: "gone" }, context)).toThrow(
      'secret sealed with unknown key id "gone"',
    );
  });
});

describe("parseSecretKeyring", () => {
  test("parses several keys, trimming spaces and ignoring empty items, the first being active", () => {
    const parsed = parseSecretKeyring(` a:${key(1)} , b-2_c:${key(2)} ,`);
    expect(parsed.activeKeyId).toBe("a");
    expect([...parsed.keys.keys()]).toEqual(["a", "b-2_c"]);
    expect(parsed.keys.get("b-2_c")?.equals(Buffer.alloc(32, 2))).toBe(true);
  });

  test("uses the active key id given", () => {
    expect(parseSecretKeyring(`a:${key(1)},b:${key(2)}`, "b").activeKeyId).toBe("b");
  });

  test.each([
    [`:${key(1)}`, ""],
    [key(1), ""],
    [`bad id:${key(1)}`, "bad id"],
    [`k.1:${key(1)}`, "k.1"],
    [`${"k".repeat(65)}:${key(1)}`, "k".repeat(65)],
  ])("rejects a malformed key id in %j", (spec, id) => {
    expect(() => parseSecretKeyring(spec)).toThrow(
      `key id "${id}" must be 1–64 letters, digits, "_" or "-" before a ":"`,
    );
  });

  test.each([
    [Buffer.alloc(16).toString("base64"), 16],
    [Buffer.alloc(31).toString("base64"), 31],
    [Buffer.alloc(33).toString("base64"), 33],
    ["", 0],
    ["not base64!", 6],
  ])("rejects a key that does not decode to 32 bytes: %j", (material, length) => {
    expect(() => parseSecretKeyring(`k1:${material}`)).toThrow(
      `key "k1" must be base64 of exactly 32 bytes, got ${length} bytes`,
    );
  });

  test("rejects a key id listed twice", () => {
    expect(() => parseSecretKeyring(`k1:${key(1)},k1:${key(2)}`)).toThrow(
      'key id "k1" is listed twice',
    );
  });

  test("rejects an active key id that is not among the keys", () => {
    expect(() => parseSecretKeyring(`k1:${key(1)}`, "k9")).toThrow(
      'active key id "k9" is not among the keys',
    );
  });

  test.each(["", " , ,"])("rejects a spec with no keys: %j", (spec) => {
    expect(() => parseSecretKeyring(spec)).toThrow("no keys given");
  });

  test("never puts key material in its messages", () => {
    const material = Buffer.alloc(16, 7).toString("base64");
    const error = (() => {
      try {
        parseSecretKeyring(`k1:${material}`);
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(error?.message).toBeDefined();
    expect(error?.message).not.toContain(material);
  });
});
