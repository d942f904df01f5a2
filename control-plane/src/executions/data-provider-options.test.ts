import { describe, expect, test } from "vitest";
import type { DataProviderRecord } from "../workflows/workflow-store.js";
import { dataProviderCacheKey } from "./data-provider-options.js";

const provider: DataProviderRecord = {
  scope: { kind: "global" },
  name: "clients",
  modulePath: "providers/clients.ts",
  exportName: "clients",
  moduleHash: "h1",
  metadata: {
    name: "clients",
    description: "",
    cacheTtlSeconds: 60,
    module: "providers/clients.ts",
    exportName: "clients",
  },
};
const orgA = "00000000-0000-4000-8000-00000000000a";
const orgB = "00000000-0000-4000-8000-00000000000b";
const key = (
  overrides: { org?: string; fingerprint?: string; inputs?: Record<string, unknown> } = {},
  record: DataProviderRecord = provider,
) =>
  dataProviderCacheKey(
    "p:",
    overrides.org ?? orgA,
    record,
    overrides.fingerprint ?? "f1",
    overrides.inputs ?? {},
  );

describe("dataProviderCacheKey", () => {
  test("names the organization in the clear, under the prefix", () => {
    expect(key()).toMatch(new RegExp(`^p:dp-options:${orgA}:[0-9a-f]{64}$`));
    expect(key({ org: orgB })).not.toBe(key());
  });

  test("equal inputs give one key whatever their key order; different inputs another", () => {
    expect(key({ inputs: { a: 1, b: { c: 2, d: [1, { e: 3, f: 4 }] } } })).toBe(
      key({ inputs: { b: { d: [1, { f: 4, e: 3 }], c: 2 }, a: 1 } }),
    );
    expect(key({ inputs: { a: 1 } })).not.toBe(key({ inputs: { a: "1" } }));
    expect(key({ inputs: { a: [1, 2] } })).not.toBe(key({ inputs: { a: [2, 1] } }));
  });

  test("moves with the organization's tree fingerprint and with the provider that won the cascade", () => {
    expect(key({ fingerprint: "f2" })).not.toBe(key());
    expect(key({}, { ...provider, moduleHash: "h2" })).not.toBe(key());
    expect(
      key({}, { ...provider, scope: { kind: "organization", organizationId: orgA } }),
    ).not.toBe(key());
    expect(key({}, { ...provider, modulePath: "providers/other.ts" })).not.toBe(key());
  });
});
