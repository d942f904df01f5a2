import { failedPrecondition, permissionDenied } from "../errors.js";
import type { MembershipRole, Principal } from "../identity/principal.js";
import type { Scope } from "../scope.js";

/**
 * Requires a role in an organization. Platform admins pass everywhere. Anyone else needs a
 * membership with at least that role; for an organization they do not belong to — existing
 * or not — the answer is the same PERMISSION_DENIED, so no one learns which ids exist.
 * Members of a deactivated organization are refused with FAILED_PRECONDITION.
 */
export function requireOrganizationRole(
  principal: Principal,
  organizationId: string,
  role: MembershipRole,
): void {
  if (principal.platformAdmin) return;
  const membership = principal.memberships.get(organizationId);
  if (!membership || (role === "admin" && membership.role !== "admin")) {
    throw permissionDenied(
      `caller is not ${role === "admin" ? "an admin" : "a member"} of organization "${organizationId}"`,
    );
  }
  if (!membership.active) throw failedPrecondition(`organization "${organizationId}" is inactive`);
}

/** Requires platform admin. */
export function requirePlatformAdmin(principal: Principal, action: string): void {
  if (!principal.platformAdmin) throw permissionDenied(`only platform admins may ${action}`);
}

/**
 * Reading a scope's own rows: an organization's admins read their organization; the global
 * scope is readable by platform admins and by admins of any active organization, since its
 * rows cascade into theirs anyway.
 */
export function requireScopeRead(principal: Principal, scope: Scope): void {
  if (scope.kind === "organization") {
    requireOrganizationRole(principal, scope.organizationId, "admin");
    return;
  }
  if (principal.platformAdmin) return;
  for (const membership of principal.memberships.values()) {
    if (membership.role === "admin" && membership.active) return;
  }
  throw permissionDenied("only platform admins and organization admins may read the global scope");
}

/** Writing a scope: an organization's admins for their organization; platform admins for global. */
export function requireScopeWrite(principal: Principal, scope: Scope): void {
  if (scope.kind === "organization") {
    requireOrganizationRole(principal, scope.organizationId, "admin");
    return;
  }
  requirePlatformAdmin(principal, "change the global scope");
}

/** The caller themself, or a platform admin. */
export function requireSelfOrPlatformAdmin(
  principal: Principal,
  userId: string,
  action: string,
): void {
  if (principal.platformAdmin || principal.userId === userId) return;
  throw permissionDenied(`only the user themself or a platform admin may ${action}`);
}
