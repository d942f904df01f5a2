import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import {
  chmod,
  chown,
  lchown,
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  utimes,
} from "node:fs/promises";
import { dirname, join } from "node:path";

/** One file of an organization's effective module tree. */
export interface TreeEntry {
  /** Workspace-relative path, e.g. "shared/halopsa.ts". */
  path: string;
  /** Lowercase hex SHA-256 of the content (the control plane's content hash). */
  contentHash: string;
}

/** Where trees live and how to get content; one per runner. */
export interface TreeStore {
  /** Host directory holding `<org>/<fingerprint>/` trees; created if missing. */
  root: string;
  /** Content for a hash (from the control plane or a cache); checked against the hash. */
  fetchContent: (contentHash: string) => Promise<string | Uint8Array>;
}

/** Thrown for input that must never reach the disk, naming the value and the rule. */
export class TreeError extends Error {
  override name = "TreeError";
}

// One segment: letters, digits, "_", "-", "@", "." but never first (no "..", no dotfiles).
// The whole path: 1..16 such segments joined by "/", ending in a module extension. This is
// a strict subset of what the control plane accepts (module-path.ts), so a path that
// passes can neither climb out of the tree nor alias another one.
const segment = "[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,127}";
const modulePathPattern = new RegExp(
  `^(?:${segment}/){0,15}${segment}\\.(?:ts|tsx|mts|js|jsx|mjs|json)$`,
);
const idPattern = /^[A-Za-z0-9_-]{1,128}$/;
const hashPattern = /^[0-9a-f]{64}$/;

/** Returns `path` if it is a safe workspace-relative module path, else throws naming it. */
export function checkTreePath(path: string): string {
  if (path.length > 512 || !modulePathPattern.test(path)) {
    throw new TreeError(
      `tree path ${JSON.stringify(path)} must be a relative module path of [A-Za-z0-9._@-] segments (no "..", ".", empty or absolute segments, backslashes or NUL) ending in .ts, .tsx, .mts, .js, .jsx, .mjs or .json`,
    );
  }
  return path;
}

function checkId(what: string, value: string): string {
  if (!idPattern.test(value)) {
    throw new TreeError(`${what} ${JSON.stringify(value)} must match [A-Za-z0-9_-]{1,128}`);
  }
  return value;
}

/**
 * Returns the directory holding the org's tree for `fingerprint`, writing it first if it is
 * not there yet. The tree is written into a private temporary directory (files 0444, dirs
 * 0555, opened with O_EXCL|O_NOFOLLOW so nothing is followed or overwritten) and renamed into
 * place in one step, so a concurrent runner or execution sees either no tree or all of it.
 * A tree is reused while the fingerprint is unchanged; anything at that path that is not a
 * real directory (a planted symlink) is refused.
 */
export async function materializeTree(
  store: TreeStore,
  organizationId: string,
  fingerprint: string,
  entries: readonly TreeEntry[],
): Promise<string> {
  const orgDir = join(store.root, checkId("organization id", organizationId));
  const target = join(orgDir, checkId("fingerprint", fingerprint));
  // A tree this process has found or written stays: trees are never changed in place, and
  // only pruneTrees (which forgets what it removes) takes one away. Its use is recorded in
  // its modification time, for pruning, at most once a minute.
  const touched = knownTrees.get(target);
  if (touched !== undefined && Date.now() - touched < treeTouchIntervalMs) return target;
  if (await isExistingTree(target)) {
    const now = new Date();
    await utimes(target, now, now);
    rememberTree(target);
    return target;
  }
  const seen = new Set<string>();
  for (const entry of entries) {
    checkTreePath(entry.path);
    if (!hashPattern.test(entry.contentHash)) {
      throw new TreeError(`content hash ${JSON.stringify(entry.contentHash)} is not a SHA-256`);
    }
    if (seen.has(entry.path)) {
      throw new TreeError(`tree path ${JSON.stringify(entry.path)} is listed twice`);
    }
    seen.add(entry.path);
  }
  await ensureRealDirectory(store.root, 0o711);
  await ensureRealDirectory(orgDir, 0o711);
  const staging = join(orgDir, `.staging-${randomBytes(8).toString("hex")}`);
  await mkdir(staging, { mode: 0o700 });
  try {
    const dirs = new Set<string>();
    for (const entry of entries) {
      for (let dir = dirname(entry.path); dir !== "."; dir = dirname(dir)) dirs.add(dir);
    }
    for (const dir of [...dirs].sort()) await mkdir(join(staging, dir), { mode: 0o755 });
    for (const entry of entries) {
      const content = await store.fetchContent(entry.contentHash);
      const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
      const actual = createHash("sha256").update(bytes).digest("hex");
      if (actual !== entry.contentHash) {
        throw new TreeError(
          `content for ${JSON.stringify(entry.path)} hashes to ${actual}, not ${entry.contentHash}`,
        );
      }
      const flags =
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
      const file = await open(join(staging, entry.path), flags, 0o444);
      try {
        await file.writeFile(bytes);
        await file.chmod(0o444);
      } finally {
        await file.close();
      }
    }
    // Deepest first, so every directory is still writable while its children are sealed.
    for (const dir of [...dirs].sort().reverse()) await chmod(join(staging, dir), 0o555);
    await chmod(staging, 0o555);
    try {
      await rename(staging, target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Another runner or execution finished the same tree first; theirs is identical.
      if ((code === "ENOTEMPTY" || code === "EEXIST") && (await isExistingTree(target))) {
        await removeTree(staging);
        rememberTree(target);
        return target;
      }
      throw error;
    }
    rememberTree(target);
    return target;
  } catch (error) {
    await removeTree(staging).catch(() => {});
    throw error;
  }
}

/**
 * Removes all but the `keep` most recently used trees of an organization (and staging
 * directories of crashed writers older than an hour), sparing those in `inUse`: a running
 * execution has its tree bind-mounted and must not lose files under it.
 */
export async function pruneTrees(
  store: Pick<TreeStore, "root">,
  organizationId: string,
  options: { keep: number; inUse?: ReadonlySet<string> },
): Promise<string[]> {
  const orgDir = join(store.root, checkId("organization id", organizationId));
  const names = await readdir(orgDir).catch(() => [] as string[]);
  const trees: Array<{ name: string; used: number }> = [];
  const removed: string[] = [];
  for (const name of names) {
    const info = await lstat(join(orgDir, name));
    if (name.startsWith(".staging-")) {
      if (Date.now() - info.mtimeMs > 3_600_000) {
        await removeTree(join(orgDir, name));
        removed.push(name);
      }
      continue;
    }
    trees.push({ name, used: info.mtimeMs });
  }
  trees.sort((a, b) => b.used - a.used);
  for (const { name } of trees.slice(options.keep)) {
    if (options.inUse?.has(name)) continue;
    // Renamed away first so no new execution picks up a half-deleted tree.
    knownTrees.delete(join(orgDir, name));
    const doomed = join(orgDir, `.staging-${randomBytes(8).toString("hex")}`);
    await rename(join(orgDir, name), doomed);
    await removeTree(doomed);
    removed.push(name);
  }
  return removed;
}

/**
 * Returns the org's Deno cache directory, created if missing and owned by `uid` (the host
 * uid sandboxes run as), so Deno can write its cache there and nowhere else.
 */
export async function ensureDenoDir(root: string, organizationId: string, uid: number | null) {
  const dir = join(root, checkId("organization id", organizationId));
  const key = `${dir}\0${uid}`;
  // Once made, it stays: only this runner writes under root (0711), and a sandbox can write
  // inside the directory but not replace it. So each is checked once per process, not per run.
  if (ensuredDenoDirs.has(key)) return dir;
  await ensureRealDirectory(root, 0o711);
  await ensureRealDirectory(dir, 0o700);
  if (uid !== null) {
    // A cache written under another sandbox uid (the runner's was changed) would be read-only
    // to this one: everything in it changes hands, links themselves and not their targets.
    if ((await lstat(dir)).uid !== uid) await chownTree(dir, uid);
    await chown(dir, uid, uid);
  }
  ensuredDenoDirs.add(key);
  return dir;
}

async function chownTree(dir: string, uid: number): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(path, uid);
    await lchown(path, uid, uid);
  }
}

const ensuredDenoDirs = new Set<string>();

/**
 * Trees this process has found or written, with when each was last touched. Checking and
 * touching a tree for every sandbox was two file system calls on every execution's path.
 */
const knownTrees = new Map<string, number>();
const knownTreesMax = 10_000;
const treeTouchIntervalMs = 60_000;

function rememberTree(path: string): void {
  if (knownTrees.size >= knownTreesMax) knownTrees.clear();
  knownTrees.set(path, Date.now());
}

async function isExistingTree(path: string): Promise<boolean> {
  try {
    const info = await lstat(path);
    if (info.isDirectory()) return true;
    throw new TreeError(`${path} exists but is not a directory (a symlink?); refusing to use it`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

async function ensureRealDirectory(path: string, mode: number): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  const info = await lstat(path);
  if (!info.isDirectory()) {
    throw new TreeError(`${path} is not a directory (a symlink?); refusing to use it`);
  }
  // mkdir's mode passes through the umask: under an operator's 077 a 0711 directory would
  // come out 0700, and no sandbox could reach its tree.
  if ((info.mode & 0o7777) !== mode) await chmod(path, mode);
}

// Sealed directories are 0555: make them writable again first so this works without root.
async function removeTree(path: string): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    await chmod(dir, 0o700);
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(join(dir, entry.name));
    }
  };
  await walk(path).catch(() => {});
  await rm(path, { recursive: true, force: true });
}
