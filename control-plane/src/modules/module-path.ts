import { invalidArgument } from "../errors.js";

/** Longest module path accepted, in characters. */
export const maxModulePathLength = 512;
/** Deepest module path accepted, in segments ("a/b/c.ts" has 3). */
export const maxModulePathDepth = 16;
/** Longest single path segment accepted, in characters. */
export const maxModuleSegmentLength = 128;
/** File types a module may have: what Deno can import as code or JSON. */
export const allowedModuleExtensions = [
  ".ts",
  ".tsx",
  ".mts",
  ".js",
  ".jsx",
  ".mjs",
  ".json",
] as const;

const segmentPattern = /^[A-Za-z0-9_@-][A-Za-z0-9._@-]*$/;

/**
 * Checks a workspace-relative module path and returns it unchanged, or throws
 * INVALID_ARGUMENT naming the path and the rule it breaks. The rules keep every path a plain
 * relative file name that cannot climb out of the sandbox tree or alias another path:
 * no "..", "." or empty segments, no absolute or drive paths, no backslashes, NUL or control
 * characters, only [A-Za-z0-9._@-] in segments (not starting with "."), bounded length and
 * depth, and a known extension.
 */
export function validateModulePath(path: string, field = "path"): string {
  const quoted = JSON.stringify(path);
  if (path.length === 0) throw invalidArgument(`${field} is required`);
  if (path.length > maxModulePathLength) {
    throw invalidArgument(
      `${field} ${JSON.stringify(`${path.slice(0, 40)}…`)} is ${path.length} characters; at most ${maxModulePathLength} are allowed`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(path)) {
    throw invalidArgument(`${field} ${quoted} must not contain NUL or control characters`);
  }
  if (path.includes("\\")) {
    throw invalidArgument(
      `${field} ${quoted} must not contain backslashes; use "/" between segments`,
    );
  }
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) {
    throw invalidArgument(`${field} ${quoted} must be relative to the workspace, not absolute`);
  }
  const segments = path.split("/");
  if (segments.includes("..")) throw invalidArgument(`${field} ${quoted} must not contain ".."`);
  if (segments.includes("."))
    throw invalidArgument(`${field} ${quoted} must not contain "." segments`);
  if (segments.includes("")) {
    throw invalidArgument(
      `${field} ${quoted} must not have empty segments ("//", leading or trailing "/")`,
    );
  }
  if (segments.length > maxModulePathDepth) {
    throw invalidArgument(
      `${field} ${quoted} is ${segments.length} segments deep; at most ${maxModulePathDepth} are allowed`,
    );
  }
  for (const segment of segments) {
    if (segment.length > maxModuleSegmentLength) {
      throw invalidArgument(
        `${field} ${quoted} has a segment of ${segment.length} characters; at most ${maxModuleSegmentLength} are allowed`,
      );
    }
    if (!segmentPattern.test(segment)) {
      throw invalidArgument(
        `${field} ${quoted} segment ${JSON.stringify(segment)} may only use letters, digits, ".", "_", "-" and "@", and must not start with "."`,
      );
    }
  }
  const last = segments[segments.length - 1] as string;
  if (!allowedModuleExtensions.some((ext) => last.endsWith(ext) && last.length > ext.length)) {
    throw invalidArgument(
      `${field} ${quoted} must end in one of ${allowedModuleExtensions.join(", ")}`,
    );
  }
  return path;
}

/**
 * Checks a path prefix used to filter listings: empty, or path segments followed by an
 * optional trailing "/" and a partial segment, with the same character rules as paths.
 */
export function validatePathPrefix(prefix: string, field = "path_prefix"): string {
  if (prefix === "") return prefix;
  if (prefix.length > maxModulePathLength || !/^[A-Za-z0-9._@/-]+$/.test(prefix)) {
    throw invalidArgument(
      `${field} ${JSON.stringify(prefix)} may only use letters, digits, ".", "_", "-", "@" and "/" (at most ${maxModulePathLength} characters)`,
    );
  }
  if (prefix.startsWith("/") || prefix.split("/").includes("..")) {
    throw invalidArgument(
      `${field} ${JSON.stringify(prefix)} must be relative and must not contain ".."`,
    );
  }
  return prefix;
}
