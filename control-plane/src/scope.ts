import type { Scope as ProtoScope } from "@bifrost/proto";
import { invalidArgument } from "./errors.js";

/** Where a scoped row lives: one organization, or the global scope every organization inherits. */
export type Scope = { kind: "global" } | { kind: "organization"; organizationId: string };

/** The global scope. */
export const globalScope: Scope = { kind: "global" };

/** An organization's scope. */
export function organizationScope(organizationId: string): Scope {
  return { kind: "organization", organizationId };
}

/** The organization_id column value of a scope (NULL for global). */
export function scopeOrganizationId(scope: Scope): string | null {
  return scope.kind === "global" ? null : scope.organizationId;
}

/** The scope of a row from its organization_id column. */
export function scopeOfRow(organizationId: string | null): Scope {
  return organizationId === null ? globalScope : organizationScope(organizationId);
}

/** Human wording for messages: `organization "…"` or `the global scope`. */
export function describeScope(scope: Scope): string {
  return scope.kind === "global" ? "the global scope" : `organization "${scope.organizationId}"`;
}

/** The key fragment naming a scope in cache keys: the organization id, or "global". */
export function scopeCacheSegment(scope: Scope): string {
  return scope.kind === "global" ? "global" : scope.organizationId;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Validates a UUID field, naming the field and value when it is malformed or missing. */
export function parseUuid(value: string | undefined, field: string): string {
  if (!value) throw invalidArgument(`${field} is required`);
  if (!uuidPattern.test(value)) throw invalidArgument(`${field} "${value}" is not a valid UUID`);
  return value.toLowerCase();
}

/** Converts the wire Scope, requiring exactly one of organization_id and global=true. */
export function scopeFromProto(scope: ProtoScope | undefined, field = "scope"): Scope {
  const kind = scope?.kind;
  if (!kind) {
    throw invalidArgument(`${field} is required: set organization_id or global = true`);
  }
  if (kind.$case === "global") {
    if (!kind.value) throw invalidArgument(`${field}.global must be true when set`);
    return globalScope;
  }
  return organizationScope(parseUuid(kind.value, `${field}.organization_id`));
}

/** Converts a scope to its wire form. */
export function scopeToProto(scope: Scope): ProtoScope {
  return scope.kind === "global"
    ? { kind: { $case: "global", value: true } }
    : { kind: { $case: "organizationId", value: scope.organizationId } };
}
