// @ts-self-types="./discover.d.ts"

import type { DataProviderMeta, WorkflowMeta } from "./meta.js";
import type { DiscoveryError } from "./protocol.js";
import {
  type DataProvider,
  declaredAt,
  isDataProvider,
  isWorkflow,
  type Workflow,
} from "./workflow.js";

/**
 * Collecting what modules declare, from their export namespaces. Pure (the entry functions do
 * the loading), so it is unit-tested without Deno.
 */

/** What discovery reports: the contract's `discovered` message without its type. */
export interface DiscoveryReport {
  workflows: WorkflowMeta[];
  dataProviders: DataProviderMeta[];
  errors: DiscoveryError[];
}

/**
 * Accumulates declarations module by module; `report()` resolves them. A declaration exported
 * by several modules (a re-export) is reported once: under the module that declares it (by
 * the URL workflow() saw on the stack) when that module is among those discovered, else under
 * the first module that exports it. A second, different declaration with a name already
 * taken is reported as an error of its module rather than silently replacing the first.
 */
export function createDiscovery() {
  type Declaration = Workflow<never, unknown> | DataProvider;
  const occurrences = new Map<Declaration, { module: string; exportName: string }[]>();
  const errors: DiscoveryError[] = [];

  const ownerOf = (declaration: Declaration) => {
    const found = occurrences.get(declaration) ?? [];
    const url = declaredAt(declaration);
    return (url && found.find((place) => url.endsWith(`/${place.module}`))) || found[0];
  };

  return {
    /** Records the workflows and data providers among a module's exports. */
    add(module: string, namespace: Record<string, unknown>): void {
      for (const exportName of Object.keys(namespace).sort()) {
        const value = namespace[exportName];
        if (!isWorkflow(value) && !isDataProvider(value)) continue;
        const places = occurrences.get(value) ?? [];
        places.push({ module, exportName });
        occurrences.set(value, places);
      }
    },
    /** Records a module that failed to load. */
    fail(module: string, message: string): void {
      errors.push({ module, message });
    },
    report(): DiscoveryReport {
      const report: DiscoveryReport = { workflows: [], dataProviders: [], errors: [...errors] };
      const owners = new Map<string, string>();
      for (const declaration of occurrences.keys()) {
        const owner = ownerOf(declaration);
        if (!owner) continue;
        const what = declaration.kind === "workflow" ? "workflow" : "data provider";
        const key = `${declaration.kind}:${declaration.meta.name}`;
        const here = `${owner.module} (export ${owner.exportName})`;
        const taken = owners.get(key);
        if (taken) {
          report.errors.push({
            module: owner.module,
            message: `${what} ${JSON.stringify(declaration.meta.name)} of ${here} is also declared by ${taken}; names must be unique`,
          });
          continue;
        }
        owners.set(key, here);
        if (isWorkflow(declaration))
          report.workflows.push({ ...structuredMeta(declaration.meta), ...owner });
        else report.dataProviders.push({ ...structuredMeta(declaration.meta), ...owner });
      }
      return report;
    },
  };
}

/** A mutable deep copy of frozen metadata (JSON round trip: metadata is JSON by construction). */
function structuredMeta<T>(meta: T): T {
  return JSON.parse(JSON.stringify(meta)) as T;
}

/**
 * Finds the workflow (or data provider) named `name` among a module's exports. Returns a
 * message saying what the module declares instead when there is none, or two.
 */
export function findDeclaration(
  module: string,
  namespace: Record<string, unknown>,
  kind: "workflow" | "dataProvider",
  name: string,
): { declaration: Workflow<never, unknown> | DataProvider } | { message: string } {
  const isKind = kind === "workflow" ? isWorkflow : isDataProvider;
  const declared = [...new Set(Object.values(namespace).filter(isKind))] as (
    | Workflow<never, unknown>
    | DataProvider
  )[];
  const matches = declared.filter((declaration) => declaration.meta.name === name);
  const what = kind === "workflow" ? "workflow" : "data provider";
  if (matches.length === 1 && matches[0]) return { declaration: matches[0] };
  if (matches.length > 1) {
    return { message: `${module} declares more than one ${what} named ${JSON.stringify(name)}` };
  }
  const names = declared.map((declaration) => JSON.stringify(declaration.meta.name));
  return {
    message: `${module} has no ${what} named ${JSON.stringify(name)}; it declares ${names.length ? names.join(", ") : `no ${what}s`}`,
  };
}
