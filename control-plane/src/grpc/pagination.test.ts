import { describe, expect, test } from "vitest";
import { AppError } from "../errors.js";
import {
  decodePageToken,
  encodePageToken,
  isStringPosition,
  isTextUuidPosition,
  isTimestampText,
  isTimestampUuidPosition,
  isUuidPosition,
  pageSize,
} from "./pagination.js";

const limits = { default: 100, max: 500 };
const uuid = "0b6a3f1e-4c2d-4e8f-9a7b-1c2d3e4f5a6b";

function invalidArgumentMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe("invalid_argument");
    return (error as AppError).message;
  }
  throw new Error("expected INVALID_ARGUMENT");
}

describe("pageSize", () => {
  test("uses the default for 0", () => {
    expect(pageSize(0, limits)).toBe(100);
  });

  test.each([1, 99, 500])("returns a requested size of %i up to the maximum", (size) => {
    expect(pageSize(size, limits)).toBe(size);
  });

  test("rejects a negative size, naming it", () => {
    expect(invalidArgumentMessage(() => pageSize(-1, limits))).toBe(
      "page_size -1 must not be negative",
    );
  });

  test("rejects a size above the maximum, naming it and the maximum", () => {
    expect(invalidArgumentMessage(() => pageSize(501, limits))).toBe(
      "page_size 501 is too large; at most 500 is allowed",
    );
  });
});

describe("page tokens", () => {
  test.each(["shared/halopsa.ts", "", ["acme", uuid], ["2026-01-02 03:04:05.678901+00", uuid]])(
    "a position round-trips through a token: %j",
    (position) => {
      const token = encodePageToken(position);
      expect(decodePageToken(token, (v): v is unknown => true)).toEqual(position);
    },
  );

  test("a token is URL-safe base64 without padding", () => {
    expect(encodePageToken(["ü?/+", uuid])).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  test("the empty token means the first page", () => {
    expect(decodePageToken("", isStringPosition)).toBeUndefined();
  });

  test.each([
    "garbage!",
    "%%%",
    Buffer.from("{not json").toString("base64url"),
    encodePageToken(42),
    encodePageToken(null),
    encodePageToken(["a", "b", "c"]),
  ])("a token this listing could not have issued is INVALID_ARGUMENT naming it: %j", (token) => {
    expect(invalidArgumentMessage(() => decodePageToken(token, isStringPosition))).toBe(
      `page_token "${token}" is not a token returned by this listing`,
    );
  });

  test("a long bad token is named by its first 40 characters only", () => {
    const token = "x".repeat(100);
    expect(invalidArgumentMessage(() => decodePageToken(token, isUuidPosition))).toBe(
      `page_token "${"x".repeat(40)}" is not a token returned by this listing`,
    );
  });

  test("a token of one listing is refused by a listing keyed differently", () => {
    const pathToken = encodePageToken("shared/a.ts");
    const orgToken = encodePageToken(["acme", uuid]);
    expect(() => decodePageToken(pathToken, isTextUuidPosition)).toThrow(AppError);
    expect(() => decodePageToken(orgToken, isStringPosition)).toThrow(AppError);
    expect(() => decodePageToken(orgToken, isTimestampUuidPosition)).toThrow(AppError);
  });
});

describe("position validators", () => {
  test("isStringPosition accepts text PostgreSQL can compare and nothing else", () => {
    expect(isStringPosition("shared/a.ts")).toBe(true);
    expect(isStringPosition("")).toBe(true);
    expect(isStringPosition("a\u0000b")).toBe(false);
    expect(isStringPosition(1)).toBe(false);
    expect(isStringPosition(["a"])).toBe(false);
  });

  test("isUuidPosition accepts only hyphenated UUIDs", () => {
    expect(isUuidPosition(uuid)).toBe(true);
    expect(isUuidPosition(uuid.toUpperCase())).toBe(true);
    expect(isUuidPosition(uuid.replaceAll("-", ""))).toBe(false);
    expect(isUuidPosition(`{${uuid}}`)).toBe(false);
    expect(isUuidPosition("not-a-uuid")).toBe(false);
  });

  test("isTextUuidPosition needs exactly [text, uuid]", () => {
    expect(isTextUuidPosition(["acme", uuid])).toBe(true);
    expect(isTextUuidPosition(["acme", "not-a-uuid"])).toBe(false);
    expect(isTextUuidPosition(["a\u0000", uuid])).toBe(false);
    expect(isTextUuidPosition([uuid])).toBe(false);
    expect(isTextUuidPosition(["acme", uuid, "x"])).toBe(false);
  });

  test.each([
    "2026-01-02 03:04:05+00",
    "2026-01-02 03:04:05.678901+00",
    "2026-01-02 03:04:05.6-05",
    "2024-02-29 23:59:59.999999+05:30",
    "0099-12-31 00:00:00+00",
  ])("isTimestampText accepts PostgreSQL's text form %j", (text) => {
    expect(isTimestampText(text)).toBe(true);
  });

  test.each([
    "yesterday",
    "2026-01-02T03:04:05Z",
    "2026-01-02 03:04:05",
    "2026-02-30 03:04:05+00",
    "2025-02-29 03:04:05+00",
    "2026-13-01 03:04:05+00",
    "2026-01-02 24:00:00+00",
    "2026-01-02 03:60:05+00",
    "2026-01-02 03:04:60+00",
    "2026-01-02 03:04:05.1234567+00",
    "2026-01-02 03:04:05+16",
  ])("isTimestampText rejects %j", (text) => {
    expect(isTimestampText(text)).toBe(false);
  });

  test("isTimestampUuidPosition needs exactly [timestamp text, uuid]", () => {
    expect(isTimestampUuidPosition(["2026-01-02 03:04:05.1+00", uuid])).toBe(true);
    expect(isTimestampUuidPosition(["yesterday", uuid])).toBe(false);
    expect(isTimestampUuidPosition(["2026-01-02 03:04:05.1+00", "x"])).toBe(false);
  });
});
