import { createHash, randomBytes } from "node:crypto";
import {
  chmod,
  copyFile,
  cp,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { dirname, join } from "node:path";
import type { DenoBinary } from "./deno-binary.js";
import { sandboxDevices, sandboxPaths } from "./sandbox-command.js";

/**
 * The sandbox's root file system: one read-only directory holding Deno at /bin/deno, each of
 * its libraries at its own path, the SDK at /sdk, and the empty mount points of everything
 * that differs per sandbox (/workspace, /job, /run/bifrost/sdk.sock, /deno-dir, /tmp, /proc,
 * /dev/null, /dev/urandom, /etc). Bubblewrap mounts it as / with one bind.
 *
 * Why: every bind bubblewrap makes costs a mount, a read-only remount and a parse of
 * /proc/self/mountinfo. Deno, its seven libraries and the SDK were nine binds of their own;
 * as one root (with a /dev of two nodes instead of bubblewrap's `--dev`) a sandboxed `true`
 * costs ~1.9 ms less machine CPU on this 2-core VM (measured in docs/design-notes.md), on
 * every execution.
 *
 * Files are hard links where the file system allows, copies otherwise: either way the root is
 * a snapshot of what this runner started with. It is named by that content, built in a
 * staging directory and renamed into place, so a root under its name is always complete.
 */

/** Prefix of roots in their parent directory (the runner's work dir). */
const rootPrefix = "sandbox-root-";

/**
 * Mount points, relative to the root: empty directories, and empty files a device is bound
 * onto. /etc is empty: name resolution files are mounted (on a tmpfs) only for a sandbox that
 * shares the host network, so none of the host's /etc is ever visible otherwise.
 */
const mountDirectories = [
  sandboxPaths.workspace,
  sandboxPaths.job,
  dirname(sandboxPaths.socket),
  sandboxPaths.denoDir,
  sandboxPaths.tmp,
  "/proc",
  "/dev",
  "/etc",
];

/**
 * Builds (or finds, when an identical one exists) the sandbox root for this Deno and SDK under
 * `parent`, removes roots of other contents there, and returns its path. `sdkDir` is the
 * directory to serve as /sdk (the bundle, or the built SDK's own directory).
 */
export async function prepareSandboxRoot(options: {
  parent: string;
  deno: Pick<DenoBinary, "path" | "libraries">;
  sdkDir: string;
}): Promise<string> {
  const { parent, deno, sdkDir } = options;
  const files = [
    { source: await realpath(deno.path), target: sandboxPaths.deno },
    ...(await Promise.all(
      deno.libraries.map(async (library) => ({ source: await realpath(library), target: library })),
    )),
  ];
  const name = `${rootPrefix}${await contentKey(files, sdkDir)}`;
  const root = join(parent, name);
  if (!(await exists(join(root, sandboxPaths.deno)))) {
    const staging = join(parent, `.staging-${rootPrefix}${randomBytes(8).toString("hex")}`);
    try {
      await build(staging, files, sdkDir);
      await rename(staging, root).catch(async (error: NodeJS.ErrnoException) => {
        // Another runner sharing this work dir built the same root first: theirs is identical.
        if (!(await exists(join(root, sandboxPaths.deno)))) throw error;
      });
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  await removeOtherRoots(parent, name);
  return root;
}

/**
 * Names a root by what it holds: each file's identity (path, device, inode, size, modification
 * time), which a replaced or rewritten binary changes, its mode (a linked file shares it: one
 * made owner-only later must be copied instead, see `linkOrCopy`), and the SDK's bytes. Not
 * the change time: linking the file into a root changes that.
 */
async function contentKey(
  files: ReadonlyArray<{ source: string; target: string }>,
  sdkDir: string,
): Promise<string> {
  const hash = createHash("sha256");
  for (const { source, target } of files) {
    const s = await stat(source);
    hash.update(`${target}\0${source}\0${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.mode}\0`);
  }
  for (const entry of (await readdir(sdkDir, { recursive: true })).sort()) {
    const path = join(sdkDir, entry);
    if (!(await stat(path)).isFile()) continue;
    hash
      .update(`sdk/${entry}\0`)
      .update(await readFile(path))
      .update("\0");
  }
  return hash.digest("hex").slice(0, 32);
}

async function build(
  staging: string,
  files: ReadonlyArray<{ source: string; target: string }>,
  sdkDir: string,
): Promise<void> {
  await mkdir(staging, { mode: 0o755 });
  for (const { source, target } of files) {
    const path = join(staging, target);
    await mkdir(dirname(path), { recursive: true });
    await linkOrCopy(source, path);
  }
  await cp(sdkDir, join(staging, sandboxPaths.sdk), { recursive: true, dereference: true });
  for (const dir of mountDirectories) await mkdir(join(staging, dir), { recursive: true });
  for (const file of [...sandboxDevices, sandboxPaths.socket]) {
    await writeFile(join(staging, file), "", { mode: 0o444 });
  }
  await chmodTree(staging);
}

/**
 * A hard link shares the page cache with the runner's own Deno and costs no space; across
 * file systems (EXDEV), or where the kernel refuses to link another user's file (EPERM,
 * protected_hardlinks), a copy does the same job. So does a copy of a file the sandbox's uid
 * could not read or run (npm under an operator's umask 077 installs Deno 0700): the copy is
 * made readable, and runnable if its owner may run it, by all. A link would share the
 * original's mode, and changing that would change the operator's install.
 */
async function linkOrCopy(source: string, target: string): Promise<void> {
  const mode = (await stat(source)).mode & 0o777;
  const forAll = mode | 0o444 | (mode & 0o100 ? 0o111 : 0);
  if (forAll === mode) {
    try {
      await link(source, target);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EXDEV" && code !== "EPERM") throw error;
    }
  }
  await copyFile(source, target);
  if (forAll !== mode) await chmod(target, forAll);
}

/**
 * Directories 0755 whatever the umask made them, and the SDK's files 0444, so the sandbox's host uid can read them; linked
 * files keep their own modes (the system's, readable by all), copies their source's.
 */
async function chmodTree(root: string): Promise<void> {
  await chmod(root, 0o755);
  for (const entry of await readdir(root, { recursive: true })) {
    const path = join(root, entry);
    if ((await lstat(path)).isDirectory()) await chmod(path, 0o755);
    else if (`/${entry}`.startsWith(`${sandboxPaths.sdk}/`)) await chmod(path, 0o444);
  }
}

/**
 * Roots of an earlier Deno or SDK are removed, and so are staging directories a crashed
 * start left behind more than an hour ago (a younger one may be another runner's build in
 * progress). Runners sharing a work dir must therefore run the same build.
 */
async function removeOtherRoots(parent: string, keep: string): Promise<void> {
  for (const entry of await readdir(parent)) {
    if (entry === keep) continue;
    const path = join(parent, entry);
    if (entry.startsWith(rootPrefix)) {
      await rm(path, { recursive: true, force: true });
    } else if (entry.startsWith(`.staging-${rootPrefix}`)) {
      const age = Date.now() - (await stat(path).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 60 * 60 * 1000) await rm(path, { recursive: true, force: true });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
