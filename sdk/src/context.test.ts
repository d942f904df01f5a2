import { describe, expect, it } from "vitest";
import { type ContextPort, createContext } from "./context.js";
import { UserError } from "./errors.js";
import type { JsonValue } from "./meta.js";
import type { NotificationMessage } from "./protocol.js";

// The context over an in-memory port: what it sends for each call, independent of Deno.

function portWith(answers: Record<string, { found: boolean; value?: JsonValue }>) {
  const sent: NotificationMessage[] = [];
  const calls: [string, unknown][] = [];
  const port: ContextPort = {
    async call(method, params) {
      calls.push([method, params]);
      const key = `${method}:${Object.values(params as object)[0]}`;
      return (answers[key] ?? (method === "variables.set" ? {} : { found: false })) as never;
    },
    notify: (message) => sent.push(message),
  };
  const ctx = createContext(
    {
      id: "exec-1",
      organization: { id: "org-a", name: "Contoso" },
      startedBy: { id: "u1", name: "Ann", email: "ann@contoso.example" },
      workflow: "w",
    },
    port,
  );
  return { ctx, sent, calls };
}

describe("the context", () => {
  it("carries the execution's identity, frozen", () => {
    const { ctx } = portWith({});
    expect(ctx.organization).toEqual({ id: "org-a", name: "Contoso" });
    expect(ctx.executionId).toBe("exec-1");
    expect(ctx.startedBy.email).toBe("ann@contoso.example");
    expect(Object.isFrozen(ctx.organization)).toBe(true);
  });

  it("sends log lines with loggable data and checkpoints with JSON data", () => {
    const { ctx, sent } = portWith({});
    ctx.log.warning("slow", { when: new Date(0), n: 1n });
    ctx.log.info("plain");
    ctx.checkpoint("step", { done: 2 });
    ctx.checkpoint("bare");
    expect(sent).toEqual([
      {
        type: "log",
        level: "warning",
        message: "slow",
        data: { when: "1970-01-01T00:00:00.000Z", n: "1" },
      },
      { type: "log", level: "info", message: "plain" },
      { type: "checkpoint", name: "step", data: { done: 2 } },
      { type: "checkpoint", name: "bare", data: null },
    ]);
  });

  it("refuses checkpoint and variable data that is not JSON, naming the path", async () => {
    const { ctx, sent } = portWith({});
    expect(() => ctx.checkpoint("step", { at: new Date(0) } as never)).toThrow(
      "data.at is a Date; checkpoints hold JSON (convert it with date.toISOString())",
    );
    await expect(ctx.variables.set("v", [Number.NaN])).rejects.toThrow(
      "value[0] is NaN; variables hold JSON (JSON has no NaN or Infinity)",
    );
    expect(sent).toEqual([]);
  });

  it("reads config with a default, and variables", async () => {
    const { ctx, calls } = portWith({
      "config.get:halo.url": { found: true, value: "https://halo" },
      "variables.get:n": { found: true, value: 3 },
    });
    expect(await ctx.config.get("halo.url", { default: "x" })).toBe("https://halo");
    expect(await ctx.config.get("missing", { default: "fallback" })).toBe("fallback");
    expect(await ctx.config.get("missing")).toBeUndefined();
    expect(await ctx.variables.get("n")).toBe(3);
    await ctx.variables.set("n", 4);
    expect(calls).toEqual([
      ["config.get", { key: "halo.url" }],
      ["config.get", { key: "missing" }],
      ["config.get", { key: "missing" }],
      ["variables.get", { name: "n" }],
      ["variables.set", { name: "n", value: 4 }],
    ]);
  });

  it("throws a UserError naming a secret that is not set", async () => {
    const { ctx } = portWith({ "secrets.get:halo.secret": { found: true, value: "s3cret" } });
    expect(await ctx.secrets.get("halo.secret")).toBe("s3cret");
    await expect(ctx.secrets.get("halo.other")).rejects.toThrow(
      new UserError('secret "halo.other" is not set for this organization or globally'),
    );
    await expect(ctx.secrets.get("")).rejects.toThrow("secret name must be a non-empty string");
  });
});
