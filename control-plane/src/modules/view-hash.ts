import { createHash } from "node:crypto";

const modulus = 1n << 256n;

/** The additive hash of nothing: an empty scope or an organization with no modules. */
export const zeroSum = 0n;

/**
 * The contribution of one (path, content hash) pair to a scope's multiset hash: SHA-256 of
 * the pair read as a 256-bit integer. Sums of these (mod 2^256) change whenever any pair is
 * added, removed or changed, and can be updated per write without rescanning the set.
 */
export function entryHash(path: string, contentHash: string): bigint {
  const digest = createHash("sha256")
    .update(path)
    .update("\u0000")
    .update(contentHash)
    .digest("hex");
  return BigInt(`0x${digest}`);
}

/** (a + b) mod 2^256. */
export function addSum(a: bigint, b: bigint): bigint {
  return (((a + b) % modulus) + modulus) % modulus;
}

/** (a − b) mod 2^256. */
export function subtractSum(a: bigint, b: bigint): bigint {
  return addSum(a, -b);
}

/** A sum as the 32 bytes stored in module_scope_states.view_sum. */
export function sumToBytes(sum: bigint): Buffer {
  return Buffer.from(sum.toString(16).padStart(64, "0"), "hex");
}

/** The 32 stored bytes as a sum. */
export function bytesToSum(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString("hex")}`);
}

/**
 * An organization's effective-view fingerprint from the global sum and its own delta sum:
 * equal exactly when the effective (path, content hash) multisets are equal, barring a
 * SHA-256 collision. Hashed once more so the stored sums are not exposed.
 */
export function viewFingerprint(globalSum: bigint, organizationSum: bigint): string {
  return createHash("sha256")
    .update("bifrost.view.v1\u0000")
    .update(sumToBytes(addSum(globalSum, organizationSum)))
    .digest("hex");
}

/** Lowercase hex SHA-256 of UTF-8 text: a module's content hash. */
export function contentHashOf(content: string): string {
  return createHash("sha256").update(content, "utf8").digest("hex");
}
