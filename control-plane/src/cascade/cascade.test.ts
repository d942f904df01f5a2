import { describe, expect, test } from "vitest";
import { mergeEffective } from "./cascade.js";

const row = (key: string, hash: string) => ({ key, hash });
const merge = (own: Row[], global: Row[]) =>
  mergeEffective(own, global, (r, provenance) => ({ ...r, provenance }));
type Row = ReturnType<typeof row>;

describe("mergeEffective", () => {
  test("the organization's row wins its key and every other global row shows through", () => {
    const own = [row("b.ts", "org-b"), row("d.ts", "org-d")];
    const global = [row("a.ts", "g-a"), row("b.ts", "g-b"), row("c.ts", "g-c")];
    expect(merge(own, global)).toEqual([
      { key: "a.ts", hash: "g-a", provenance: "global" },
      { key: "b.ts", hash: "org-b", provenance: "override" },
      { key: "c.ts", hash: "g-c", provenance: "global" },
      { key: "d.ts", hash: "org-d", provenance: "organization" },
    ]);
  });

  test("an organization without rows gets the global rows, and no global rows leaves its own", () => {
    const global = [row("a.ts", "g-a")];
    expect(merge([], global)).toEqual([{ key: "a.ts", hash: "g-a", provenance: "global" }]);
    expect(merge(global, [])).toEqual([{ key: "a.ts", hash: "g-a", provenance: "organization" }]);
  });

  test("rows before, between and after the global keys come out in key order", () => {
    const own = [row("0.ts", "o0"), row("m/x.ts", "om"), row("z/y.ts", "oz")];
    const global = [row("a.ts", "ga"), row("m/x.ts", "gm"), row("q.ts", "gq")];
    expect(merge(own, global).map((r) => [r.key, r.provenance])).toEqual([
      ["0.ts", "organization"],
      ["a.ts", "global"],
      ["m/x.ts", "override"],
      ["q.ts", "global"],
      ["z/y.ts", "organization"],
    ]);
  });

  test("the inputs are left as they were (the global rows may be shared between calls)", () => {
    const own = [row("a.ts", "o")];
    const global = [row("a.ts", "g"), row("b.ts", "g")];
    merge(own, global);
    expect(own).toEqual([row("a.ts", "o")]);
    expect(global).toEqual([row("a.ts", "g"), row("b.ts", "g")]);
  });
});
