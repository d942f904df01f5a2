/**
 * The sandbox layout the runner builds for every execution, which the import map points
 * into: the organization's effective tree, read-only, at a fixed path (so Deno's caches and
 * stack traces carry no organization id), and the pre-built SDK.
 */
export const sandboxWorkspaceUrl = "file:///workspace/";
/** Where the runner mounts the SDK's entry module. */
export const sandboxSdkUrl = "file:///sdk/mod.js";

/** A Deno import map. */
export interface ImportMap {
  imports: Record<string, string>;
}

/**
 * Builds the import map for an effective tree. Each top-level directory gets a prefix entry
 * ("shared/" → the tree's shared/), each top-level file an exact entry, and "bifrost" maps to
 * the SDK. Workspace-path imports ("shared/halopsa.ts") and relative imports therefore land
 * on the same file of the same merged tree: the organization's override where it has one,
 * the global module otherwise.
 */
export function buildImportMap(paths: Iterable<string>): ImportMap {
  const imports: Record<string, string> = { bifrost: sandboxSdkUrl };
  const entries = new Set<string>();
  for (const path of paths) {
    const slash = path.indexOf("/");
    entries.add(slash === -1 ? path : path.slice(0, slash + 1));
  }
  for (const entry of [...entries].sort()) imports[entry] = `${sandboxWorkspaceUrl}${entry}`;
  return { imports };
}
