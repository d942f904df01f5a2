import { describe, expect, test } from "vitest";
import {
  createOutputSink,
  type OutputLimits,
  type OutputStream,
  stripControlCharacters,
} from "./output-lines.js";

const roomy: OutputLimits = {
  maxLines: 100,
  maxBytes: 10_000,
  maxLineBytes: 1000,
  floodBytes: 1000,
};

function collect(limits: OutputLimits = roomy) {
  const lines: Array<[OutputStream, string]> = [];
  const sink = createOutputSink(limits, (stream, line) => lines.push([stream, line]));
  return { sink, lines };
}

describe("stripControlCharacters", () => {
  test("removes escape sequences, control characters and bidi overrides but keeps tabs", () => {
    expect(stripControlCharacters("\u001b[31mred\u001b[0m")).toBe("red");
    expect(stripControlCharacters("\u001b]0;title\u0007text")).toBe("text");
    expect(stripControlCharacters("a\u0000b\u0007c\u007fd\u009be")).toBe("abcde");
    expect(stripControlCharacters("x\u202Eevil\u2066y")).toBe("xevily");
    expect(stripControlCharacters("tab\tstays, ünïcødé too ✓")).toBe("tab\tstays, ünïcødé too ✓");
  });
});

describe("createOutputSink", () => {
  test("splits chunks into lines per stream, across chunk boundaries and CRLF", () => {
    const { sink, lines } = collect();
    sink.push("stdout", Buffer.from("one\ntw"));
    sink.push("stderr", Buffer.from("err\r\n"));
    sink.push("stdout", Buffer.from("o\nthree"));
    sink.end("stdout");
    sink.end("stderr");
    expect(lines).toEqual([
      ["stdout", "one"],
      ["stderr", "err"],
      ["stdout", "two"],
      ["stdout", "three"],
    ]);
    expect(sink.truncated).toBe(false);
  });

  test("a multi-byte character split between chunks survives", () => {
    const { sink, lines } = collect();
    const bytes = Buffer.from("héllo\n");
    sink.push("stdout", bytes.subarray(0, 2));
    sink.push("stdout", bytes.subarray(2));
    expect(lines).toEqual([["stdout", "héllo"]]);
  });

  test("a long line is cut at the line cap and marked, and the next line is whole", () => {
    const { sink, lines } = collect({ ...roomy, maxLineBytes: 5 });
    sink.push("stdout", Buffer.from("abcdefghij"));
    sink.push("stdout", Buffer.from("klm\nok\n"));
    expect(lines).toEqual([
      ["stdout", "abcde …[line truncated]"],
      ["stdout", "ok"],
    ]);
    expect(sink.truncated).toBe(true);
  });

  test("past the line cap nothing is forwarded and truncation is reported", () => {
    const { sink, lines } = collect({ ...roomy, maxLines: 2 });
    sink.push("stdout", Buffer.from("1\n2\n"));
    expect(sink.truncated).toBe(false);
    sink.push("stdout", Buffer.from("3\n4\n"));
    expect(lines.map(([, line]) => line)).toEqual(["1", "2"]);
    expect(sink.truncated).toBe(true);
  });

  test("past the byte cap nothing is forwarded; past the flood allowance push says stop", () => {
    const { sink, lines } = collect({ ...roomy, maxBytes: 8, floodBytes: 10 });
    expect(sink.push("stdout", Buffer.from("1234\n5678\n"))).toBe(true);
    expect(lines.map(([, line]) => line)).toEqual(["1234"]);
    expect(sink.truncated).toBe(true);
    expect(sink.push("stdout", Buffer.from("xxxxxxxx"))).toBe(true);
    expect(sink.push("stdout", Buffer.from("x"))).toBe(false);
    expect(sink.flooded).toBe(true);
    sink.end("stdout");
    expect(lines.map(([, line]) => line)).toEqual(["1234", "567"]);
  });

  test("an unterminated last line is flushed at the end", () => {
    const { sink, lines } = collect();
    sink.push("stderr", Buffer.from("partial"));
    sink.end("stderr");
    expect(lines).toEqual([["stderr", "partial"]]);
  });
});
