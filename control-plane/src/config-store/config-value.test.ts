import type { ConfigValue as ProtoConfigValue } from "@bifrost/proto";
import { describe, expect, test } from "vitest";
import { AppError } from "../errors.js";
import {
  type ConfigValue,
  configValueFromProto,
  configValueFromRow,
  configValueToProto,
  maxConfigValueBytes,
  validateConfigKey,
  validateDescription,
} from "./config-value.js";

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

const wire = (kind: ProtoConfigValue["kind"]): ProtoConfigValue => ({ kind });

describe("validateConfigKey", () => {
  test.each(["a", "halo.base_url", "Region-1", "x".repeat(200), "a.b.c_d-e"])(
    "accepts the key %j",
    (key) => {
      expect(validateConfigKey(key)).toBe(key);
    },
  );

  test("rejects an empty key, naming the field", () => {
    expect(invalidArgumentMessage(() => validateConfigKey(""))).toBe("key is required");
    expect(invalidArgumentMessage(() => validateConfigKey("", "name"))).toBe("name is required");
  });

  test.each(["1abc", "_a", ".a", "-a", "has space", "a/b", "a:b", "ü", "a\u0000", "x".repeat(201)])(
    "rejects the key %j, naming it",
    (key) => {
      expect(invalidArgumentMessage(() => validateConfigKey(key, "name"))).toBe(
        `name ${JSON.stringify(key.slice(0, 80))} must start with a letter and use only letters, digits, "_", "-" and "." (at most 200 characters)`,
      );
    },
  );
});

describe("validateDescription", () => {
  test("accepts any text without NUL, including other control characters", () => {
    expect(validateDescription("line one\nline two\t✓")).toBe("line one\nline two\t✓");
  });

  test("rejects a NUL character, naming the field", () => {
    expect(invalidArgumentMessage(() => validateDescription("a\u0000b"))).toBe(
      "description must not contain NUL characters",
    );
  });
});

describe("configValueFromProto", () => {
  test.each([undefined, wire(undefined)])(
    "rejects a missing value, listing the kinds: %j",
    (value) => {
      expect(invalidArgumentMessage(() => configValueFromProto(value))).toBe(
        "value is required: set one of string_value, int_value, bool_value, json_value, secret_ref",
      );
    },
  );

  test("names the field it was given", () => {
    expect(invalidArgumentMessage(() => configValueFromProto(undefined, "default_value"))).toMatch(
      /^default_value is required/,
    );
  });

  test("converts each kind", () => {
    expect(configValueFromProto(wire({ $case: "stringValue", value: "eu" }))).toEqual({
      type: "string",
      value: "eu",
    });
    expect(configValueFromProto(wire({ $case: "intValue", value: "-42" }))).toEqual({
      type: "int",
      value: "-42",
    });
    expect(configValueFromProto(wire({ $case: "boolValue", value: false }))).toEqual({
      type: "bool",
      value: false,
    });
    expect(configValueFromProto(wire({ $case: "jsonValue", value: '{"a":[1,2]}' }))).toEqual({
      type: "json",
      value: { a: [1, 2] },
    });
    expect(configValueFromProto(wire({ $case: "secretRef", value: "halo.token" }))).toEqual({
      type: "secret_ref",
      value: "halo.token",
    });
  });

  test("keeps int64 values exact as decimal strings", () => {
    const big = "9223372036854775807";
    expect(configValueFromProto(wire({ $case: "intValue", value: big }))).toEqual({
      type: "int",
      value: big,
    });
    expect(configValueFromProto(wire({ $case: "intValue", value: "007" }))).toEqual({
      type: "int",
      value: "7",
    });
  });

  test.each(["12x", "", "1.5", "1e3", " 12", "+1", "0x10"])(
    "rejects the int_value %j, naming it",
    (value) => {
      expect(
        invalidArgumentMessage(() => configValueFromProto(wire({ $case: "intValue", value }))),
      ).toBe(`value.int_value "${value}" is not an integer`);
    },
  );

  test.each(["{not json", "", "[1,", "undefined", "{'a':1}"])(
    "rejects the json_value %j, naming it",
    (value) => {
      expect(
        invalidArgumentMessage(() => configValueFromProto(wire({ $case: "jsonValue", value }))),
      ).toMatch(
        new RegExp(
          `^value\\.json_value ${escapeRegExp(JSON.stringify(value))} is not valid JSON: `,
        ),
      );
    },
  );

  test.each(['"a\\u0000"', '{"k\\u0000":1}', '[["\\u0000"]]'])(
    "rejects the json_value %j, whose NUL jsonb cannot store",
    (value) => {
      expect(
        invalidArgumentMessage(() => configValueFromProto(wire({ $case: "jsonValue", value }))),
      ).toContain("must not contain NUL");
    },
  );

  test("accepts JSON holding a backslash followed by u0000 as text", () => {
    expect(configValueFromProto(wire({ $case: "jsonValue", value: '"\\\\u0000"' }))).toEqual({
      type: "json",
      value: "\\u0000",
    });
  });

  test("rejects a string_value with NUL", () => {
    expect(
      invalidArgumentMessage(() =>
        configValueFromProto(wire({ $case: "stringValue", value: "a\u0000" })),
      ),
    ).toBe("value.string_value must not contain NUL characters");
  });

  test("accepts string and JSON values exactly at the size limit and rejects one byte more", () => {
    const atLimit = "s".repeat(maxConfigValueBytes);
    expect(configValueFromProto(wire({ $case: "stringValue", value: atLimit })).value).toBe(
      atLimit,
    );
    expect(
      invalidArgumentMessage(() =>
        configValueFromProto(wire({ $case: "stringValue", value: `${atLimit}s` })),
      ),
    ).toBe(`value.string_value is larger than ${maxConfigValueBytes} bytes`);
    const json = JSON.stringify("j".repeat(maxConfigValueBytes - 1));
    expect(
      invalidArgumentMessage(() => configValueFromProto(wire({ $case: "jsonValue", value: json }))),
    ).toBe(`value.json_value is larger than ${maxConfigValueBytes} bytes`);
  });

  test("counts the size limit in UTF-8 bytes", () => {
    const value = "ü".repeat(maxConfigValueBytes / 2 + 1);
    expect(() => configValueFromProto(wire({ $case: "stringValue", value }))).toThrow(
      "is larger than",
    );
  });

  test("rejects a secret_ref that is not a valid secret name, naming it", () => {
    expect(
      invalidArgumentMessage(() =>
        configValueFromProto(wire({ $case: "secretRef", value: "9lives" })),
      ),
    ).toMatch(/^value\.secret_ref "9lives" must start with a letter/);
  });
});

describe("wire and row forms", () => {
  const values: ConfigValue[] = [
    { type: "string", value: "eu-west" },
    { type: "int", value: "-9223372036854775808" },
    { type: "bool", value: true },
    { type: "bool", value: false },
    { type: "json", value: { nested: [1, "two", null, { deep: true }] } },
    { type: "secret_ref", value: "halo.token" },
  ];

  test.each(values)("a $type value round-trips through its wire form", (value) => {
    expect(configValueFromProto(configValueToProto(value))).toEqual(value);
  });

  test.each(values)("a $type value round-trips through its stored row", (value) => {
    expect(configValueFromRow(value.type, value.value)).toEqual(value);
  });

  test("an unknown stored type reads as a string", () => {
    expect(configValueFromRow("mystery", 12)).toEqual({ type: "string", value: "12" });
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
