import { invalidArgument } from "../errors.js";

/** The page size to use: the default for 0, the requested size up to the maximum. */
export function pageSize(requested: number, options: { default: number; max: number }): number {
  if (requested < 0) throw invalidArgument(`page_size ${requested} must not be negative`);
  if (requested === 0) return options.default;
  if (requested > options.max) {
    throw invalidArgument(`page_size ${requested} is too large; at most ${options.max} is allowed`);
  }
  return requested;
}

/** An opaque token carrying the keyset position after which the next page starts. */
export function encodePageToken(position: unknown): string {
  return Buffer.from(JSON.stringify(position), "utf8").toString("base64url");
}

/** Decodes a page token; the empty token means the first page. */
export function decodePageToken<T>(
  token: string,
  isValid: (value: unknown) => value is T,
): T | undefined {
  if (!token) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    value = undefined;
  }
  if (!isValid(value)) {
    throw invalidArgument(
      `page_token "${token.slice(0, 40)}" is not a token returned by this listing`,
    );
  }
  return value;
}

/** Page token validator for a single string key. */
export const isStringPosition = (value: unknown): value is string => typeof value === "string";

/** Page token validator for a [string, string] key. */
export const isPairPosition = (value: unknown): value is [string, string] =>
  Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === "string");
