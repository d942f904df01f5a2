import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/** The encryption keys a deployment knows, and which one seals new values. */
export interface SecretKeyring {
  activeKeyId: string;
  keys: ReadonlyMap<string, Buffer>;
}

/** A value sealed with AES-256-GCM: nonce, ciphertext with the 16-byte tag appended, key id. */
export interface SealedSecret {
  keyId: string;
  nonce: Buffer;
  ciphertext: Buffer;
}

const keyIdPattern = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Parses "id:base64,id:base64". Each key must decode to exactly 32 bytes; ids must be unique.
 * The active key defaults to the first one listed.
 */
export function parseSecretKeyring(spec: string, activeKeyId?: string): SecretKeyring {
  const keys = new Map<string, Buffer>();
  for (const part of spec
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const separator = part.indexOf(":");
    const id = separator > 0 ? part.slice(0, separator) : "";
    if (!keyIdPattern.test(id)) {
      throw new Error(`key id "${id}" must be 1–64 letters, digits, "_" or "-" before a ":"`);
    }
    const key = Buffer.from(part.slice(separator + 1), "base64");
    if (key.length !== 32) {
      throw new Error(`key "${id}" must be base64 of exactly 32 bytes, got ${key.length} bytes`);
    }
    if (keys.has(id)) throw new Error(`key id "${id}" is listed twice`);
    keys.set(id, key);
  }
  const active = activeKeyId ?? keys.keys().next().value;
  if (active === undefined) throw new Error("no keys given");
  if (!keys.has(active)) throw new Error(`active key id "${active}" is not among the keys`);
  return { activeKeyId: active, keys };
}

/**
 * Seals a secret with the active key. The associated data binds the ciphertext to its scope
 * and name, so a sealed value copied to another organization's row fails to open.
 */
export function sealSecret(
  keyring: SecretKeyring,
  plaintext: string,
  context: string,
): SealedSecret {
  const key = keyring.keys.get(keyring.activeKeyId) as Buffer;
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.from(context, "utf8"));
  const ciphertext = Buffer.concat([
    cipher.update(plaintext, "utf8"),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return { keyId: keyring.activeKeyId, nonce, ciphertext };
}

/** Opens a sealed secret; throws if the key is unknown or the value or context was tampered with. */
export function openSecret(keyring: SecretKeyring, sealed: SealedSecret, context: string): string {
  const key = keyring.keys.get(sealed.keyId);
  if (!key) throw new Error(`secret sealed with unknown key id "${sealed.keyId}"`);
  const tag = sealed.ciphertext.subarray(sealed.ciphertext.length - 16);
  const body = sealed.ciphertext.subarray(0, sealed.ciphertext.length - 16);
  const decipher = createDecipheriv("aes-256-gcm", key, sealed.nonce);
  decipher.setAAD(Buffer.from(context, "utf8"));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
}
