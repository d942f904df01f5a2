import { describe, expectTypeOf, it } from "vitest";
import type { Context } from "./context.js";
import type { JsonValue } from "./meta.js";
import { param } from "./param.js";
import { workflow } from "./workflow.js";

// Compile-time checks: `tsc -b` fails if the handler's params are not inferred as declared
// (required → T, default → T, optional → T | undefined; options narrow T).

describe("the handler's params type", () => {
  it("is inferred from the param declarations", () => {
    const onboard = workflow(
      {
        name: "onboard",
        params: {
          email: param.email({ required: true }),
          count: param.int({ default: 1 }),
          ratio: param.float(),
          active: param.bool({ required: false }),
          plan: param.string({ validation: { options: ["basic", "pro"] }, default: "basic" }),
          size: param.int({ required: true, validation: { options: [1, 2, 3] } }),
          extra: param.json(),
          tags: param.list(),
          ids: param.list({ items: "int", required: true }),
          levels: param.list({
            items: "string",
            validation: { options: ["low", "high"] },
            default: ["low"],
          }),
        },
      },
      (params, ctx) => {
        expectTypeOf(params.email).toEqualTypeOf<string>();
        expectTypeOf(params.count).toEqualTypeOf<number>();
        expectTypeOf(params.ratio).toEqualTypeOf<number | undefined>();
        expectTypeOf(params.active).toEqualTypeOf<boolean | undefined>();
        expectTypeOf(params.plan).toEqualTypeOf<"basic" | "pro">();
        expectTypeOf(params.size).toEqualTypeOf<1 | 2 | 3>();
        expectTypeOf(params.extra).toEqualTypeOf<JsonValue | undefined>();
        expectTypeOf(params.tags).toEqualTypeOf<string[] | undefined>();
        expectTypeOf(params.ids).toEqualTypeOf<number[]>();
        expectTypeOf(params.levels).toEqualTypeOf<("low" | "high")[]>();
        expectTypeOf(ctx).toEqualTypeOf<Context>();
        // @ts-expect-error not declared
        void params.colour;
        return { email: params.email, count: params.count };
      },
    );
    expectTypeOf(onboard.meta.name).toEqualTypeOf<string>();
    expectTypeOf(onboard.handler).returns.toEqualTypeOf<
      { email: string; count: number } | Promise<{ email: string; count: number }>
    >();
  });

  it("is empty for a workflow without params, and async results are unwrapped", () => {
    const ping = workflow({ name: "ping" }, async (params) => {
      // biome-ignore lint/complexity/noBannedTypes: the empty object type is the expectation
      expectTypeOf(params).toEqualTypeOf<{}>();
      return "pong" as const;
    });
    expectTypeOf(ping.handler).returns.toEqualTypeOf<"pong" | Promise<"pong">>();
  });

  it("rejects defaults and options of the wrong type", () => {
    // @ts-expect-error a string default for an int
    param.int({ default: "3" });
    // @ts-expect-error number options for a string
    param.string({ validation: { options: [1, 2] } });
    // @ts-expect-error min does not apply to strings
    param.string({ validation: { min: 1 } });
    // @ts-expect-error an unknown item type
    param.list({ items: "date" });
  });

  it("types the context's config, secrets and variables", () => {
    workflow({ name: "ctx" }, async (_params, ctx) => {
      expectTypeOf(
        await ctx.config.get("halo.url", { default: "https://x" }),
      ).toEqualTypeOf<string>();
      expectTypeOf(await ctx.config.get("halo.url")).toEqualTypeOf<JsonValue | undefined>();
      expectTypeOf(await ctx.secrets.get("halo.secret")).toEqualTypeOf<string>();
      expectTypeOf(await ctx.variables.get<number>("count")).toEqualTypeOf<number | undefined>();
      // @ts-expect-error variables hold JSON, not Dates
      await ctx.variables.set("when", new Date());
      ctx.log.info("typed", { anything: new Date() });
    });
  });
});
