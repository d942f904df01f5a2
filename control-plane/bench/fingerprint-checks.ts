import { systemActor } from "../src/audit/audit-log.js";
import type { ModuleStore } from "../src/modules/module-store.js";
import { addSum, contentHashOf, entryHash, viewFingerprint } from "../src/modules/view-hash.js";
import { globalScope, organizationScope } from "../src/scope.js";
import { count, line } from "./bench-report.js";
import { moduleContent, modulePath } from "./module-corpus.js";

/** Σ entryHash over the entries, as a fingerprint: what the stored sums must agree with. */
function fingerprintOfEntries(entries: Array<{ path: string; contentHash: string }>): string {
  let sum = 0n;
  for (const entry of entries) sum = addSum(sum, entryHash(entry.path, entry.contentHash));
  return viewFingerprint(sum, 0n);
}

/**
 * Checks the fingerprint's contract on the benchmark's data and prints one line per check:
 * it equals the hash recomputed from the entries returned with it (so sums and entries come
 * from one snapshot and agree), changes on an org write, ignores another org's write and a
 * global write to a path the org overrides, changes on a global write to a path it does not
 * override. Expects `orgA` to override modulePath(0) and nobody to override modulePath(1).
 * Writes modules; returns whether every check passed.
 */
export async function checkFingerprints(
  modules: ModuleStore,
  orgA: string,
  orgB: string,
): Promise<boolean> {
  const actor = systemActor;
  const fingerprint = async (id: string) => (await modules.effectiveView(id)).fingerprint;
  let passed = true;
  const check = (label: string, ok: boolean) => {
    passed &&= ok;
    line(`${ok ? "ok  " : "FAIL"} ${label}`);
  };
  console.log("\nFingerprint correctness");
  for (const [name, id] of [
    ["A", orgA],
    ["B", orgB],
  ] as const) {
    const view = await modules.effectiveView(id);
    const entries = view.entries ?? [];
    check(
      `org ${name}: fingerprint equals the hash of its ${count(entries.length)} returned entries`,
      view.fingerprint === fingerprintOfEntries(entries),
    );
  }
  const overridden = modulePath(0);
  const plain = modulePath(1);
  const a0 = await fingerprint(orgA);
  const b0 = await fingerprint(orgB);
  await modules.put(actor, organizationScope(orgA), overridden, moduleContent(0, "org-a-edited"));
  const a1 = await fingerprint(orgA);
  check("org write changes the org's fingerprint", a1 !== a0);
  check("org write leaves the other org's fingerprint", (await fingerprint(orgB)) === b0);
  await modules.put(actor, organizationScope(orgA), overridden, moduleContent(0, "org-a"));
  check(
    "reverting the org write restores the previous fingerprint",
    (await fingerprint(orgA)) === a0,
  );
  await modules.put(actor, globalScope, overridden, moduleContent(0, "global-edited"));
  check(
    "global write to a path the org overrides leaves its fingerprint",
    (await fingerprint(orgA)) === a0,
  );
  check(
    "… and changes the fingerprint of an org that does not override it",
    (await fingerprint(orgB)) !== b0,
  );
  await modules.put(actor, globalScope, plain, moduleContent(1, "global-edited"));
  const a2 = await fingerprint(orgA);
  check("global write to a path the org does not override changes its fingerprint", a2 !== a0);
  await modules.delete(actor, organizationScope(orgA), overridden);
  check(
    "deleting an override (the global module shows through) changes the fingerprint",
    (await fingerprint(orgA)) !== a2,
  );
  const orgOnly = "orgs/bench-a-only.ts";
  const provenanceAt = async (path: string) =>
    (await modules.effectiveView(orgA)).entries?.find((e) => e.path === path)?.provenance;
  await modules.put(actor, organizationScope(orgA), orgOnly, "export const only = 'a';\n");
  const a3 = await fingerprint(orgA);
  const before = await provenanceAt(orgOnly);
  await modules.put(actor, globalScope, orgOnly, "export const only = 'global';\n");
  check(
    "global module added under an org-only path: fingerprint kept, provenance organization → override",
    (await fingerprint(orgA)) === a3 &&
      before === "organization" &&
      (await provenanceAt(orgOnly)) === "override",
  );
  const after = await modules.effectiveView(orgA);
  const entries = after.entries ?? [];
  const shown = entries.find((e) => e.path === overridden);
  check(
    "after the writes: fingerprint equals the hash of the entries; global module and provenance shown",
    after.fingerprint === fingerprintOfEntries(entries) &&
      shown?.contentHash === contentHashOf(moduleContent(0, "global-edited")) &&
      shown.provenance === "global",
  );
  return passed;
}
