import { describe, expect, it } from "vitest";
import { findNonJson, toLoggable } from "./json-check.js";
import { checkOptions, checkResult } from "./result-check.js";

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

describe("checkResult", () => {
  it.each([
    [
      { users: [{}, {}, { created: new Date(0) }] },
      "result.users[2].created is a Date; return JSON (convert it with date.toISOString())",
    ],
    [{ run: () => 1 }, "result.run is a function; return JSON"],
    [{ n: Number.NaN }, "result.n is NaN; return JSON (JSON has no NaN or Infinity)"],
    [
      [Number.NEGATIVE_INFINITY],
      "result[0] is -Infinity; return JSON (JSON has no NaN or Infinity)",
    ],
    [{ big: 10n }, "result.big is a BigInt; return JSON (convert it with String() or Number())"],
    [[1, undefined], "result[1] is undefined; return JSON (use null)"],
    // biome-ignore lint/suspicious/noSparseArray: the hole is what this case checks
    [[1, , 3], "result[1] is an empty slot; return JSON (use null)"],
    [
      { "odd key": new Map() },
      'result["odd key"] is a Map; return JSON (convert it with Object.fromEntries(map))',
    ],
    [{ tags: new Set(["a"]) }, "result.tags is a Set; return JSON (convert it with [...set])"],
    [
      { point: new Point(1, 2) },
      "result.point is a Point instance; return JSON (use a plain object)",
    ],
    [
      { pending: Promise.resolve(1) },
      "result.pending is a Promise; return JSON (did you forget an await?)",
    ],
    [
      { bytes: new Uint8Array(2) },
      "result.bytes is a Uint8Array; return JSON (convert bytes to base64 or an array of numbers)",
    ],
    [Symbol("s"), "result is a symbol; return JSON"],
  ])("names the path of a non-JSON value (%#)", (value, message) => {
    expect(checkResult(value)).toEqual({ problem: message });
  });

  it("names a cycle and where it points back to", () => {
    const a: Record<string, unknown> = { name: "a" };
    a.self = { parent: a };
    expect(checkResult({ a })).toEqual({
      problem: "result.a.self.parent refers back to result.a, a cycle; return JSON",
    });
  });

  it("accepts JSON, shared references, null-prototype objects and omitted undefined properties", () => {
    const shared = { id: 1 };
    const bare = Object.assign(Object.create(null), { k: "v" });
    const value = { a: shared, b: shared, bare, optional: undefined, list: [null, true, "x", 1.5] };
    expect(checkResult(value)).toEqual({ value });
  });

  it("turns a handler that returns nothing into null", () => {
    expect(checkResult(undefined)).toEqual({ value: null });
  });

  it("reports values nested deeper than the limit instead of overflowing", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 600; i++) deep = [deep];
    expect(findNonJson(deep, "result")?.message).toMatch(/is nested more than 500 levels deep$/);
  });
});

describe("checkOptions", () => {
  it("accepts options with labels, JSON values and metadata objects", () => {
    const options = [
      { label: "A", value: { id: 1 }, metadata: { region: "eu" } },
      { label: "B", value: null },
    ];
    expect(checkOptions(options)).toEqual({ value: options });
  });

  it.each([
    [
      { label: "A", value: 1 },
      "result must be a list of options; options are { label: string, value: JSON, metadata?: object }",
    ],
    [
      [{ label: "A" }],
      "result[0].value is missing; options are { label: string, value: JSON, metadata?: object }",
    ],
    [
      [{ label: "A", value: 1, colour: "red" }],
      "result[0].colour is not allowed; options are { label: string, value: JSON, metadata?: object }",
    ],
    [
      [{ label: "A", value: 1, metadata: [] }],
      "result[0].metadata must be an object; options are { label: string, value: JSON, metadata?: object }",
    ],
    [
      [{ label: "A", value: new Date(0) }],
      "result[0].value is a Date; options hold JSON (convert it with date.toISOString())",
    ],
  ])("rejects malformed options (%#)", (value, problem) => {
    expect(checkOptions(value)).toEqual({ problem });
  });
});

describe("toLoggable", () => {
  it("makes anything loggable without throwing", () => {
    const cycle: Record<string, unknown> = { name: "c" };
    cycle.self = cycle;
    expect(
      toLoggable({
        when: new Date(0),
        big: 12n,
        nan: Number.NaN,
        error: new TypeError("bad"),
        map: new Map([["k", 1]]),
        set: new Set([1, 2]),
        point: new Point(1, 2),
        fn: () => 1,
        list: [undefined, () => 1],
        cycle,
      }),
    ).toEqual({
      when: "1970-01-01T00:00:00.000Z",
      big: "12",
      nan: "NaN",
      error: { name: "TypeError", message: "bad" },
      map: { k: 1 },
      set: [1, 2],
      point: { x: 1, y: 2 },
      list: [null, null],
      cycle: { name: "c", self: "[cycle]" },
    });
  });
});
