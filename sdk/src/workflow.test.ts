import { describe, expect, it } from "vitest";
import { createDiscovery, findDeclaration } from "./discover.js";
import { DefinitionError } from "./meta-check.js";
import { param } from "./param.js";
import { dataProvider, isDataProvider, isWorkflow, workflow } from "./workflow.js";

describe("workflow()", () => {
  it("fills in the metadata defaults and derives labels from param names", () => {
    const declared = workflow(
      {
        name: "onboard_user",
        params: { firstName: param.string({ required: true }), mail_box: param.email() },
      },
      () => null,
    );
    expect(isWorkflow(declared)).toBe(true);
    expect(declared.meta).toEqual({
      name: "onboard_user",
      description: "",
      category: "General",
      tags: [],
      timeoutSeconds: null,
      schedule: null,
      network: [],
      params: [
        { name: "firstName", type: "string", label: "First name", required: true, helpText: "" },
        { name: "mail_box", type: "email", label: "Mail box", required: false, helpText: "" },
      ],
    });
    expect(Object.isFrozen(declared.meta.params[0])).toBe(true);
  });

  it("records list item types and validation as declared", () => {
    const declared = workflow(
      {
        name: "w",
        params: {
          ids: param.list({ items: "int", default: [1], validation: { maxLength: 5, min: 1 } }),
        },
      },
      () => null,
    );
    expect(declared.meta.params).toEqual([
      {
        name: "ids",
        type: "list",
        items: "int",
        label: "Ids",
        required: false,
        helpText: "",
        default: [1],
        validation: { maxLength: 5, min: 1 },
      },
    ]);
  });

  it("throws one DefinitionError listing every problem", () => {
    const declare = () =>
      workflow(
        {
          name: "Onboard User",
          category: "",
          timeoutSeconds: 0,
          schedule: "61 * * * *",
          network: ["https://api.halo.example/v1"],
          params: {
            count: param.int({ default: "3" as unknown as number }),
            bad: "string" as never,
          },
          retries: 3,
        } as never,
        () => null,
      );
    expect(declare).toThrow(DefinitionError);
    let problems: readonly string[] = [];
    try {
      declare();
    } catch (error) {
      problems = (error as DefinitionError).problems;
    }
    expect(problems).toEqual([
      'workflow name "Onboard User" must start with a letter and use only letters, digits, "_", "-" and "." (at most 100 characters)',
      "category must be a non-empty string of at most 100 characters",
      "timeoutSeconds must be a whole number from 1 to 86400, got 0",
      'schedule "61 * * * *" must be a cron expression of five fields (minute hour day-of-month month day-of-week), like "0 6 * * 1-5": the minute field "61" is not valid (0-59)',
      'network host "https://api.halo.example/v1" must be a lowercase host name like "api.example.com", "*.example.com" or "api.example.com:8443", without a scheme or path',
      'unknown option "retries"; options are name, description, category, tags, timeoutSeconds, schedule, network, params',
      'param "count": default must be an integer, got "3"',
      'param "bad" must be declared with param.string(), param.int(), …',
    ]);
  });

  it("refuses a schedule on a workflow with a required param, naming it", () => {
    const scheduled = (params: NonNullable<Parameters<typeof workflow>[0]["params"]>) => () =>
      workflow({ name: "w", schedule: "0 6 * * *", params }, () => null);
    expect(scheduled({ tenant: param.string({ required: true }) })).toThrow(
      /param "tenant" is required, but the workflow has a schedule: a scheduled run gets only the params' defaults/,
    );
    expect(scheduled({ tenant: param.string({ default: "all" }) })).not.toThrow();
    expect(scheduled({ tenant: param.string() })).not.toThrow();
    // Without a schedule a required param is fine: whoever starts the run gives it.
    expect(() =>
      workflow({ name: "w", params: { tenant: param.string({ required: true }) } }, () => null),
    ).not.toThrow();
  });

  it("accepts cron names, steps, lists and macros, and host wildcards with ports", () => {
    for (const schedule of [
      "*/15 * * * *",
      "0 6 * * mon-fri",
      "0 0 1,15 jan-jun *",
      "@daily",
      "5 4 * * 7",
    ]) {
      expect(() => workflow({ name: "w", schedule }, () => null), schedule).not.toThrow();
    }
    expect(() =>
      workflow(
        { name: "w", network: ["*.graph.microsoft.com", "api.halo.example:8443"] },
        () => null,
      ),
    ).not.toThrow();
    expect(() => workflow({ name: "w", network: ["api.halo.example:70000"] }, () => null)).toThrow(
      /network host/,
    );
  });

  it("rejects unknown param options, which Deno would not type-check at run time", () => {
    expect(() =>
      workflow({ name: "w", params: { n: param.int({ requried: true } as never) } }, () => null),
    ).toThrow(
      'param "n": unknown option "requried"; options are label, required, default, helpText, validation, dataProvider',
    );
  });
});

describe("dataProvider()", () => {
  it("defaults the description and a 300 s cache", () => {
    const clients = dataProvider({ name: "clients" }, () => []);
    expect(isDataProvider(clients)).toBe(true);
    expect(clients.meta).toEqual({ name: "clients", description: "", cacheTtlSeconds: 300 });
    expect(() => dataProvider({ name: "x", cacheTtlSeconds: -1 }, () => [])).toThrow(
      /cacheTtlSeconds must be a whole number/,
    );
  });
});

describe("discovery", () => {
  const a = workflow({ name: "a" }, () => 1);
  const b = workflow({ name: "b" }, () => 2);
  const otherA = workflow({ name: "a" }, () => 3);
  const clients = dataProvider({ name: "clients" }, () => []);

  it("reports each declaration once, with its module and export, ignoring other exports", () => {
    const discovery = createDiscovery();
    discovery.add("workflows/one.ts", { a, clients, helper: () => 1, value: 3 });
    discovery.add("workflows/two.ts", { b, alsoA: a });
    discovery.fail("workflows/broken.ts", "SyntaxError: Unexpected token");
    const report = discovery.report();
    expect(report.workflows.map((w) => [w.name, w.module, w.exportName])).toEqual([
      ["a", "workflows/one.ts", "a"],
      ["b", "workflows/two.ts", "b"],
    ]);
    expect(report.dataProviders).toEqual([
      {
        name: "clients",
        description: "",
        cacheTtlSeconds: 300,
        module: "workflows/one.ts",
        exportName: "clients",
      },
    ]);
    expect(report.errors).toEqual([
      { module: "workflows/broken.ts", message: "SyntaxError: Unexpected token" },
    ]);
  });

  it("reports a second declaration of a taken name as an error of its module", () => {
    const discovery = createDiscovery();
    discovery.add("workflows/one.ts", { a });
    discovery.add("workflows/two.ts", { otherA });
    expect(discovery.report().errors).toEqual([
      {
        module: "workflows/two.ts",
        message:
          'workflow "a" of workflows/two.ts (export otherA) is also declared by workflows/one.ts (export a); names must be unique',
      },
    ]);
  });

  it("finds the declaration to run, or says what the module declares", () => {
    expect(findDeclaration("workflows/one.ts", { a, b }, "workflow", "b")).toEqual({
      declaration: b,
    });
    expect(findDeclaration("workflows/one.ts", { a, b }, "workflow", "c")).toEqual({
      message: 'workflows/one.ts has no workflow named "c"; it declares "a", "b"',
    });
    expect(findDeclaration("workflows/one.ts", { a }, "dataProvider", "clients")).toEqual({
      message:
        'workflows/one.ts has no data provider named "clients"; it declares no data providers',
    });
    expect(findDeclaration("workflows/one.ts", { a, otherA }, "workflow", "a")).toEqual({
      message: 'workflows/one.ts declares more than one workflow named "a"',
    });
  });
});
