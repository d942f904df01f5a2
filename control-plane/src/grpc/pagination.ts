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

// A token is client input: each validator accepts only positions the listing could have issued,
// so a forged token is INVALID_ARGUMENT rather than a PostgreSQL cast error (INTERNAL).

/** Page token validator for a single text key (PostgreSQL text cannot hold NUL). */
export const isStringPosition = (value: unknown): value is string =>
  typeof value === "string" && !value.includes("\u0000");

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Page token validator for a UUID key. */
export const isUuidPosition = (value: unknown): value is string =>
  typeof value === "string" && uuidPattern.test(value);

/** Page token validator for a [text, UUID] key, such as (lower(name), id). */
export const isTextUuidPosition = (value: unknown): value is [string, string] =>
  Array.isArray(value) &&
  value.length === 2 &&
  isStringPosition(value[0]) &&
  isUuidPosition(value[1]);

// timestamptz as PostgreSQL prints it (DateStyle ISO): "2026-01-02 03:04:05.678901+00".
const timestampPattern =
  /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?[+-](\d{2})(:[0-5]\d){0,2}$/;

/** True for a timestamptz in PostgreSQL's ISO text form naming a real calendar instant. */
export function isTimestampText(value: unknown): value is string {
  if (typeof value !== "string") return false;
  const match = timestampPattern.exec(value);
  if (!match) return false;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(match[i]));
  const offsetHours = Number(match[8]);
  const date = new Date(0);
  date.setUTCFullYear(year as number, (month as number) - 1, day);
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === (month as number) - 1 &&
    date.getUTCDate() === day &&
    (hour as number) < 24 &&
    (minute as number) < 60 &&
    (second as number) < 60 &&
    offsetHours < 16
  );
}

/** Page token validator for a [timestamptz text, UUID] key, such as (created_at, id). */
export const isTimestampUuidPosition = (value: unknown): value is [string, string] =>
  Array.isArray(value) &&
  value.length === 2 &&
  isTimestampText(value[0]) &&
  isUuidPosition(value[1]);
