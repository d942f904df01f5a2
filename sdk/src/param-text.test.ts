import { describe, expect, it } from "vitest";
import type { ParamMeta } from "./meta.js";
import { parseParamText } from "./param-text.js";

const meta = (type: ParamMeta["type"], items?: ParamMeta["items"]): ParamMeta => ({
  name: "p",
  type,
  label: "P",
  required: false,
  helpText: "",
  ...(items ? { items } : {}),
});

describe("parseParamText", () => {
  it.each([
    [meta("int"), "3", 3],
    [meta("int"), " -12 ", -12],
    [meta("float"), "2.5", 2.5],
    [meta("float"), "1e3", 1000],
    [meta("bool"), "true", true],
    [meta("bool"), "No", false],
    [meta("bool"), "1", true],
    [meta("string"), " spaced ", " spaced "],
    [meta("email"), "a@b.co", "a@b.co"],
    [meta("json"), '{"a":[1,null]}', { a: [1, null] }],
    [meta("list"), "a, b,c", ["a", "b", "c"]],
    [meta("list", "int"), "1,2, 3", [1, 2, 3]],
    [meta("list", "email"), '["a@b.co"]', ["a@b.co"]],
    [meta("list"), "", []],
  ])("parses %# as the declared type", (param, text, value) => {
    expect(parseParamText(param, text)).toEqual({ ok: true, value });
  });

  it.each([
    [meta("int"), "2.5", 'p must be an integer, got "2.5"'],
    [meta("int"), "", "p must be an integer, got an empty string"],
    [meta("int"), "99999999999999999999", 'p must be an integer, got "99999999999999999999"'],
    [meta("float"), "abc", 'p must be a finite number, got "abc"'],
    [meta("float"), "Infinity", 'p must be a finite number, got "Infinity"'],
    [meta("bool"), "maybe", 'p must be true or false, got "maybe"'],
    [meta("list", "int"), "1,x", 'p[1] must be an integer, got "x"'],
  ])("rejects text that is not the declared type (%#)", (param, text, message) => {
    expect(parseParamText(param, text)).toEqual({ ok: false, message });
  });

  it("reports JSON syntax errors", () => {
    const parsed = parseParamText(meta("json"), "{oops");
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? "" : parsed.message).toMatch(/^p must be JSON text: /);
  });
});
