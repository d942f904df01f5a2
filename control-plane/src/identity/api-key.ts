import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** The parts of an API key: "bfk_<lookup>_<secret>". */
export interface ParsedApiKey {
  /** 16 hex characters; not secret; finds the stored row. */
  lookup: string;
  /** The whole key, hashed for comparison. */
  key: string;
}

const keyPattern = /^bfk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** A fresh random API key: 64 bits of lookup, 256 bits of secret. */
export function generateApiKey(): ParsedApiKey {
  const lookup = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { lookup, key: `bfk_${lookup}_${secret}` };
}

/** Parses a presented key, or returns undefined when it is not shaped like one. */
export function parseApiKey(key: string): ParsedApiKey | undefined {
  const match = keyPattern.exec(key);
  return match ? { lookup: match[1] as string, key } : undefined;
}

/**
 * SHA-256 of the whole key. A fast hash suffices: keys carry 256 random bits, so there is
 * nothing to brute-force, unlike passwords.
 */
export function hashApiKey(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

/** Constant-time comparison of a presented key against the stored hash. */
export function apiKeyMatches(key: string, storedHash: Uint8Array): boolean {
  const presented = hashApiKey(key);
  return storedHash.length === presented.length && timingSafeEqual(presented, storedHash);
}

/** The displayable, non-secret start of a key. */
export function apiKeyPrefix(lookup: string): string {
  return `bfk_${lookup}`;
}
