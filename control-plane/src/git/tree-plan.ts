import { isUtf8 } from "node:buffer";
import { AppError } from "../errors.js";
import { validateModulePath } from "../modules/module-path.js";
import type { CurrentModule, ScopeReplacement } from "../modules/scope-replace.js";
import { contentHashOf } from "../modules/view-hash.js";
import type { TreeEntry } from "./git-client.js";

/** Why a file of the repository did not become a module. */
export type SkipReason =
  | "symlink"
  | "submodule"
  | "oversized"
  | "invalid_path"
  | "binary"
  | "outside_subfolder";

export interface SkippedFile {
  /** Path in the repository. */
  path: string;
  reason: SkipReason;
  detail: string;
}

/** A file of the tree that may become a module, once its content is known to be text. */
export interface CandidateFile {
  repoPath: string;
  modulePath: string;
  blob: string;
}

/**
 * Sorts a commit's tree into candidate modules and skipped files: entries outside the
 * subfolder, symlinks (never followed: their target could be anywhere), submodules, files
 * over the size limit and paths that are not valid module paths.
 */
export function classifyTree(
  entries: readonly TreeEntry[],
  options: { subfolder: string; maxBytes: number },
): { candidates: CandidateFile[]; skipped: SkippedFile[] } {
  const prefix = options.subfolder ? `${options.subfolder}/` : "";
  const candidates: CandidateFile[] = [];
  const skipped: SkippedFile[] = [];
  for (const entry of entries) {
    const skip = (reason: SkipReason, detail: string) =>
      skipped.push({ path: entry.path, reason, detail });
    if (prefix && !entry.path.startsWith(prefix)) {
      skip("outside_subfolder", `not under "${options.subfolder}/"`);
      continue;
    }
    if (entry.type === "commit") {
      skip("submodule", "submodules are not followed");
      continue;
    }
    if (entry.type !== "blob") continue;
    if (entry.mode === "120000") {
      skip("symlink", "symbolic links are not followed");
      continue;
    }
    if (entry.size !== null && entry.size > options.maxBytes) {
      skip("oversized", `${entry.size} bytes; at most ${options.maxBytes} bytes are allowed`);
      continue;
    }
    const modulePath = entry.path.slice(prefix.length);
    try {
      validateModulePath(modulePath);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      skip("invalid_path", error.message);
      continue;
    }
    candidates.push({ repoPath: entry.path, modulePath, blob: entry.object });
  }
  return { candidates, skipped };
}

/** Whether a blob is not module text: NUL bytes or not UTF-8. */
export function isBinary(content: Buffer): boolean {
  return content.includes(0) || !isUtf8(content);
}

/**
 * What makes the scope equal to the candidates: a candidate whose blob the module was
 * written from is unchanged without reading it; otherwise its content (from `contents`, by
 * blob) is written when its hash differs, or only its blob id is recorded when it does not.
 * Binary candidates are skipped; modules with no candidate are deleted.
 */
export function planReplacement(
  candidates: readonly CandidateFile[],
  current: ReadonlyMap<string, CurrentModule>,
  contents: ReadonlyMap<string, Buffer>,
): { replacement: ScopeReplacement; unchanged: number; skipped: SkippedFile[] } {
  const writes: Array<{ path: string; content: string; gitBlob: string }> = [];
  const blobs: Array<{ path: string; gitBlob: string }> = [];
  const skipped: SkippedFile[] = [];
  const kept = new Set<string>();
  let unchanged = 0;
  for (const file of candidates) {
    const existing = current.get(file.modulePath);
    if (existing?.gitBlob === file.blob) {
      kept.add(file.modulePath);
      unchanged++;
      continue;
    }
    const content = contents.get(file.blob);
    if (content === undefined)
      throw new Error(`blob ${file.blob} of ${file.repoPath} was not read`);
    if (isBinary(content)) {
      skipped.push({ path: file.repoPath, reason: "binary", detail: "not UTF-8 text" });
      continue;
    }
    kept.add(file.modulePath);
    const text = content.toString("utf8");
    if (existing && existing.contentHash === contentHashOf(text)) {
      blobs.push({ path: file.modulePath, gitBlob: file.blob });
      unchanged++;
    } else {
      writes.push({ path: file.modulePath, content: text, gitBlob: file.blob });
    }
  }
  const deletes = [...current.keys()].filter((path) => !kept.has(path));
  return { replacement: { writes, blobs, deletes }, unchanged, skipped };
}

/** The blobs a plan must read: candidates whose module was not written from that blob. */
export function blobsToRead(
  candidates: readonly CandidateFile[],
  current: ReadonlyMap<string, CurrentModule>,
): string[] {
  return candidates
    .filter((file) => current.get(file.modulePath)?.gitBlob !== file.blob)
    .map((file) => file.blob);
}
