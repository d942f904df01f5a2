import { describe, expect, test } from "vitest";
import { AppError } from "../errors.js";
import {
  allowedModuleExtensions,
  maxModulePathDepth,
  maxModulePathLength,
  maxModuleSegmentLength,
  validateModulePath,
  validatePathPrefix,
} from "./module-path.js";

/** The INVALID_ARGUMENT message validateModulePath throws for a path. */
function rejection(path: string, field?: string): string {
  try {
    validateModulePath(path, field);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe("invalid_argument");
    return (error as AppError).message;
  }
  throw new Error(`expected ${JSON.stringify(path)} to be rejected`);
}

describe("validateModulePath", () => {
  test.each([
    "shared/halopsa.ts",
    "a/b/c-d_e@1.json",
    "main.ts",
    "workflows/onboard.tsx",
    "lib/util.mts",
    "lib/util.js",
    "lib/util.jsx",
    "lib/util.mjs",
    "@scope/pkg/mod.ts",
    "v1.2/file.name.with.dots.ts",
    "-dash/_under.ts",
  ])("accepts the plain relative path %j and returns it unchanged", (path) => {
    expect(validateModulePath(path)).toBe(path);
  });

  test("accepts every allowed extension", () => {
    for (const ext of allowedModuleExtensions) {
      expect(validateModulePath(`shared/mod${ext}`)).toBe(`shared/mod${ext}`);
    }
  });

  test("accepts a path exactly at the depth limit", () => {
    const path = `${"a/".repeat(maxModulePathDepth - 1)}x.ts`;
    expect(path.split("/")).toHaveLength(maxModulePathDepth);
    expect(validateModulePath(path)).toBe(path);
  });

  test("accepts a segment exactly at the segment length limit", () => {
    const segment = `${"s".repeat(maxModuleSegmentLength - 3)}.ts`;
    expect(segment).toHaveLength(maxModuleSegmentLength);
    expect(validateModulePath(`shared/${segment}`)).toBe(`shared/${segment}`);
  });

  test("accepts a path exactly at the length limit", () => {
    const path = `${`${"a".repeat(100)}/`.repeat(4)}${"b".repeat(maxModulePathLength - 407)}.ts`;
    expect(path).toHaveLength(maxModulePathLength);
    expect(validateModulePath(path)).toBe(path);
  });

  test("rejects an empty path, naming the field", () => {
    expect(rejection("")).toBe("path is required");
    expect(rejection("", "module_path")).toBe("module_path is required");
  });

  test("rejects a path one character over the length limit, naming its start and the limit", () => {
    const path = `${`${"a".repeat(100)}/`.repeat(4)}${"b".repeat(maxModulePathLength - 406)}.ts`;
    expect(path).toHaveLength(maxModulePathLength + 1);
    expect(rejection(path)).toBe(
      `path ${JSON.stringify(`${path.slice(0, 40)}…`)} is ${maxModulePathLength + 1} characters; at most ${maxModulePathLength} are allowed`,
    );
  });

  test.each([
    "shared/a\u0000.ts",
    "shared/a\n.ts",
    "shared/a\r.ts",
    "shared/a\t.ts",
    "\u001bshared/a.ts",
    "shared/a\u007f.ts",
  ])("rejects the path %j with a NUL or control character", (path) => {
    expect(rejection(path)).toBe(
      `path ${JSON.stringify(path)} must not contain NUL or control characters`,
    );
  });

  test("rejects a path with a backslash", () => {
    expect(rejection("shared\\a.ts")).toBe(
      'path "shared\\\\a.ts" must not contain backslashes; use "/" between segments',
    );
  });

  test.each(["/x.ts", "/shared/x.ts", "C:x.ts", "C:/x.ts", "z:/shared/x.ts"])(
    "rejects the absolute or drive path %j",
    (path) => {
      expect(rejection(path)).toBe(
        `path ${JSON.stringify(path)} must be relative to the workspace, not absolute`,
      );
    },
  );

  test.each(["../x.ts", "shared/../x.ts", "shared/..", "a/b/../../c.ts"])(
    "rejects a path with a '..' segment: %j",
    (path) => {
      expect(rejection(path)).toBe(`path ${JSON.stringify(path)} must not contain ".."`);
    },
  );

  test.each(["./x.ts", "shared/./x.ts", "shared/."])(
    "rejects a path with a '.' segment: %j",
    (path) => {
      expect(rejection(path)).toBe(`path ${JSON.stringify(path)} must not contain "." segments`);
    },
  );

  test.each(["a//b.ts", "shared/", "shared//"])(
    "rejects a path with an empty segment: %j",
    (path) => {
      expect(rejection(path)).toBe(
        `path ${JSON.stringify(path)} must not have empty segments ("//", leading or trailing "/")`,
      );
    },
  );

  test("rejects a path one segment deeper than the limit", () => {
    const path = `${"a/".repeat(maxModulePathDepth)}x.ts`;
    expect(rejection(path)).toBe(
      `path ${JSON.stringify(path)} is ${maxModulePathDepth + 1} segments deep; at most ${maxModulePathDepth} are allowed`,
    );
  });

  test("rejects a segment one character over the segment limit", () => {
    const path = `shared/${"s".repeat(maxModuleSegmentLength - 2)}.ts`;
    expect(rejection(path)).toBe(
      `path ${JSON.stringify(path)} has a segment of ${maxModuleSegmentLength + 1} characters; at most ${maxModuleSegmentLength} are allowed`,
    );
  });

  test.each([
    ["shared/my module.ts", "my module.ts"],
    ["shared/ü.ts", "ü.ts"],
    ["shared/日本.ts", "日本.ts"],
    ["shared/a:b.ts", "a:b.ts"],
    ["shared/a*b.ts", "a*b.ts"],
    ["shared/$(id).ts", "$(id).ts"],
    ["my dir/a.ts", "my dir"],
  ])("rejects %j for the bad characters of the segment %j", (path, segment) => {
    expect(rejection(path)).toBe(
      `path ${JSON.stringify(path)} segment ${JSON.stringify(segment)} may only use letters, digits, ".", "_", "-" and "@", and must not start with "."`,
    );
  });

  test.each([
    ["shared/.hidden.ts", ".hidden.ts"],
    [".git/config.ts", ".git"],
    ["shared/.ts", ".ts"],
    ["a/...ts", "...ts"],
  ])("rejects %j for the leading-dot segment %j", (path, segment) => {
    expect(rejection(path)).toContain(`segment ${JSON.stringify(segment)}`);
    expect(rejection(path)).toContain('must not start with "."');
  });

  test.each([
    "shared/a.py",
    "shared/README",
    "shared/a.TS",
    "shared/a.ts.bak",
    "shared.ts/readme",
    "shared/ts",
  ])("rejects %j for a wrong or missing extension", (path) => {
    expect(rejection(path)).toBe(
      `path ${JSON.stringify(path)} must end in one of ${allowedModuleExtensions.join(", ")}`,
    );
  });

  test("checks the cheapest rule first: a NUL in an absolute '..' path is reported as NUL", () => {
    expect(rejection("/../a\u0000")).toContain("NUL or control characters");
  });
});

describe("validatePathPrefix", () => {
  test.each(["", "shared", "shared/", "shared/hal", "a/b-c_d@1."])(
    "accepts the prefix %j",
    (prefix) => {
      expect(validatePathPrefix(prefix)).toBe(prefix);
    },
  );

  test.each(["a b", "ü", "a\\b", "a\u0000", "x".repeat(maxModulePathLength + 1)])(
    "rejects the prefix %j for its characters or length",
    (prefix) => {
      expect(() => validatePathPrefix(prefix)).toThrow(/may only use letters, digits/);
    },
  );

  test.each(["/shared", "../x", "a/../b", "a/.."])(
    "rejects the absolute or climbing prefix %j",
    (prefix) => {
      expect(() => validatePathPrefix(prefix)).toThrow(
        `path_prefix ${JSON.stringify(prefix)} must be relative and must not contain ".."`,
      );
    },
  );
});
