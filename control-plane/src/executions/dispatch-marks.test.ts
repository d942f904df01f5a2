import { describe, expect, test } from "vitest";
import { createLogger } from "../log.js";
import { createDispatchMarks } from "./dispatch-marks.js";

// The batching alone; the UPDATE itself runs against PostgreSQL in the executions tests.
function recorder(options: { failFirst?: boolean } = {}) {
  const batches: string[][] = [];
  let fail = options.failFirst ?? false;
  return {
    batches,
    executions: {
      async markDispatched(ids: readonly string[]) {
        batches.push([...ids]);
        if (fail) {
          fail = false;
          throw new Error("database away");
        }
      },
    },
  };
}

const log = createLogger({ name: "dispatch-marks-test", level: "silent" });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("dispatch marks", () => {
  test("marks added within the delay go out in one write; later ones in the next", async () => {
    const r = recorder();
    const marks = createDispatchMarks({ executions: r.executions, log, maxDelayMs: 30 });
    marks.add("a");
    marks.add("b");
    marks.add("c");
    expect(r.batches).toEqual([]);
    await sleep(60);
    expect(r.batches).toEqual([["a", "b", "c"]]);
    marks.add("d");
    await sleep(60);
    expect(r.batches).toEqual([["a", "b", "c"], ["d"]]);
  });

  test("a full batch goes out at once; flush writes the rest and waits for it", async () => {
    const r = recorder();
    const marks = createDispatchMarks({
      executions: r.executions,
      log,
      maxDelayMs: 60_000,
      maxBatch: 2,
    });
    marks.add("a");
    marks.add("b");
    marks.add("c");
    expect(r.batches).toEqual([["a", "b"]]);
    await marks.flush();
    expect(r.batches).toEqual([["a", "b"], ["c"]]);
    await marks.flush();
    expect(r.batches).toHaveLength(2);
  });

  test("a claimed execution's mark is dropped; a batch left empty is no write at all", async () => {
    const r = recorder();
    const marks = createDispatchMarks({ executions: r.executions, log, maxDelayMs: 30 });
    marks.add("a");
    marks.add("b");
    marks.claimed("a");
    await sleep(60);
    expect(r.batches).toEqual([["b"]]);
    marks.add("c");
    marks.claimed("c");
    marks.claimed("not pending");
    await sleep(60);
    await marks.flush();
    expect(r.batches).toEqual([["b"]]);
  });

  test("a failed write is logged, not thrown, and later marks still go out", async () => {
    const r = recorder({ failFirst: true });
    const marks = createDispatchMarks({ executions: r.executions, log, maxDelayMs: 10 });
    marks.add("a");
    await marks.flush();
    marks.add("b");
    await marks.flush();
    expect(r.batches).toEqual([["a"], ["b"]]);
  });
});
