import { describe, expect, it } from "vitest";
import type { ParamMeta } from "./meta.js";
import { checkParamMeta, validateParams } from "./params.js";

const meta = (
  name: string,
  type: ParamMeta["type"],
  extra: Partial<ParamMeta> = {},
): ParamMeta => ({
  name,
  type,
  label: name,
  required: false,
  helpText: "",
  ...extra,
});

const schema: ParamMeta[] = [
  meta("email", "email", { required: true }),
  meta("count", "int", { default: 1, validation: { min: 1, max: 10 } }),
  meta("ratio", "float"),
  meta("active", "bool", { default: true }),
  meta("code", "string", { validation: { pattern: "[A-Z]{3}", minLength: 3, maxLength: 3 } }),
  meta("plan", "string", { validation: { options: ["basic", "pro"] } }),
  meta("extra", "json"),
  meta("emails", "list", { items: "email", validation: { minLength: 1, maxLength: 3 } }),
];

describe("validateParams", () => {
  it("accepts valid params, applies defaults and keeps declaration order", () => {
    const result = validateParams(schema, {
      emails: ["x@y.io"],
      email: "a@b.co",
      extra: { any: [1, null] },
    });
    expect(result).toEqual({
      ok: true,
      value: {
        email: "a@b.co",
        count: 1,
        active: true,
        extra: { any: [1, null] },
        emails: ["x@y.io"],
      },
    });
    expect(Object.keys(result.ok ? result.value : {})).toEqual([
      "email",
      "count",
      "active",
      "extra",
      "emails",
    ]);
  });

  it("reports every problem at once, each naming the field and what is allowed", () => {
    const result = validateParams(schema, {
      count: 11,
      ratio: Number.POSITIVE_INFINITY,
      active: "yes",
      code: "abcd",
      plan: "gold",
      emails: [],
      colour: "red",
    });
    expect(result).toEqual({
      ok: false,
      errors: [
        {
          field: "colour",
          message:
            'unknown param "colour"; this workflow takes: email, count, ratio, active, code, plan, extra, emails',
        },
        {
          field: "email",
          message: "email is required: give an email address like name@example.com",
        },
        { field: "count", message: "count must be at most 10, got 11" },
        { field: "ratio", message: "ratio must be a finite number, got Infinity" },
        { field: "active", message: 'active must be true or false, got "yes"' },
        { field: "code", message: "code must be at most 3 characters long, got 4" },
        { field: "code", message: 'code must match the pattern [A-Z]{3}, got "abcd"' },
        { field: "plan", message: 'plan must be one of "basic", "pro", got "gold"' },
        { field: "emails", message: "emails must have at least 1 item, got 0" },
      ],
    });
  });

  it("requires ints to be integers and rejects numeric strings", () => {
    const ints = [meta("n", "int")];
    expect(validateParams(ints, { n: 2.5 })).toMatchObject({
      errors: [{ message: "n must be an integer, got 2.5" }],
    });
    expect(validateParams(ints, { n: "3" })).toMatchObject({
      errors: [{ message: 'n must be an integer, got "3"' }],
    });
    expect(validateParams(ints, { n: 2 ** 60 })).toMatchObject({ ok: false });
    expect(validateParams(ints, { n: -4 })).toEqual({ ok: true, value: { n: -4 } });
  });

  it("checks email shape", () => {
    const emails = [meta("e", "email")];
    for (const bad of [
      "a",
      "a@b",
      "a b@c.de",
      "@b.co",
      "a@b..co",
      "a@-b.co",
      `${"x".repeat(250)}@b.co`,
    ]) {
      expect(validateParams(emails, { e: bad }).ok, bad).toBe(false);
    }
    for (const good of [
      "a@b.co",
      "first.last+tag@mail.example.com",
      "x_y@sub-domain.example.org",
    ]) {
      expect(validateParams(emails, { e: good }).ok, good).toBe(true);
    }
  });

  it("types list items and names each bad item by index", () => {
    const lists = [
      meta("ids", "list", { items: "int", validation: { min: 1, options: [1, 2, 3] } }),
    ];
    expect(validateParams(lists, { ids: [1, "2", 0, 4] })).toEqual({
      ok: false,
      errors: [
        { field: "ids[1]", message: 'ids[1] must be an integer, got "2"' },
        { field: "ids[2]", message: "ids[2] must be at least 1, got 0" },
        { field: "ids[2]", message: "ids[2] must be one of 1, 2, 3, got 0" },
        { field: "ids[3]", message: "ids[3] must be one of 1, 2, 3, got 4" },
      ],
    });
    expect(validateParams(lists, { ids: "1,2" })).toMatchObject({
      errors: [{ message: 'ids must be a list of integers, got "1,2"' }],
    });
  });

  it("treats null as missing except for json params, where it is a value", () => {
    const params = [
      meta("a", "string", { default: "x" }),
      meta("b", "json"),
      meta("c", "int", { required: true }),
    ];
    expect(validateParams(params, { a: null, b: null, c: null })).toEqual({
      ok: false,
      errors: [{ field: "c", message: "c is required: give an integer" }],
    });
    expect(validateParams(params, { a: null, b: null, c: 1 })).toEqual({
      ok: true,
      value: { a: "x", b: null, c: 1 },
    });
  });

  it("anchors patterns to the whole value", () => {
    const params = [meta("code", "string", { validation: { pattern: "[a-z]+" } })];
    expect(validateParams(params, { code: "abc1" }).ok).toBe(false);
    expect(validateParams(params, { code: "abc" }).ok).toBe(true);
  });

  it("rejects input that is not an object and json values that are not JSON", () => {
    expect(validateParams(schema, [])).toEqual({
      ok: false,
      errors: [{ field: "params", message: "params must be an object, got a list" }],
    });
    const result = validateParams([meta("j", "json")], { j: { when: new Date(0) } });
    expect(result).toMatchObject({
      errors: [{ field: "j", message: "j must be JSON, but j.when is a Date" }],
    });
  });

  it("says a workflow without params takes none", () => {
    expect(validateParams([], { x: 1 })).toMatchObject({
      errors: [{ message: 'unknown param "x"; this workflow takes no params' }],
    });
  });

  it("does not share a default object between calls", () => {
    const params = [meta("j", "json", { default: { list: [] } })];
    const first = validateParams(params, {});
    if (first.ok) (first.value.j as { list: number[] }).list.push(1);
    expect(validateParams(params, {})).toEqual({ ok: true, value: { j: { list: [] } } });
  });
});

describe("checkParamMeta", () => {
  it("accepts a complete, consistent declaration", () => {
    expect(
      checkParamMeta(
        meta("count", "int", { default: 2, validation: { min: 1, max: 5, options: [1, 2] } }),
      ),
    ).toEqual([]);
  });

  it("lists every problem of a declaration", () => {
    expect(
      checkParamMeta(
        meta("tags", "list", {
          items: "int",
          validation: { minLength: 3, maxLength: 1, pattern: "(", min: 2 },
          default: ["a"],
        }),
      ),
    ).toEqual([
      'param "tags": validation.pattern does not apply to a list of int param (it takes minLength, maxLength, min, max, options)',
      'param "tags": validation.minLength 3 is greater than validation.maxLength 1',
      'param "tags": validation.pattern "(" is not a valid regular expression (Invalid regular expression: /(/u: Unterminated group)',
    ]);
  });

  it("rejects bad names, defaults of the wrong type, options outside the type and required defaults", () => {
    expect(checkParamMeta(meta("1st", "string"))[0]).toMatch(
      /^param "1st": the name must start with a letter/,
    );
    expect(checkParamMeta(meta("n", "int", { default: 1.5 }))).toEqual([
      'param "n": default must be an integer, got 1.5',
    ]);
    expect(checkParamMeta(meta("p", "string", { validation: { options: ["a", 1] } }))).toEqual([
      'param "p": options[1] must be a string, got 1',
    ]);
    expect(checkParamMeta(meta("r", "string", { required: true, default: "x" }))).toEqual([
      'param "r": a required param cannot have a default; remove one of them',
    ]);
    expect(checkParamMeta(meta("b", "bool", { validation: { min: 1 } }))).toEqual([
      'param "b": validation.min does not apply to a bool param (it takes nothing)',
    ]);
  });
});
