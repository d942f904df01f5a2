import { isForeignKeyViolation, type SqlOrTx } from "../db/postgres.js";
import { failedPrecondition, notFound } from "../errors.js";
import { describeScope, type Scope } from "../scope.js";
import { addSum, bytesToSum, subtractSum, sumToBytes } from "./view-hash.js";

// The per-scope view sums (module_scope_states) and the rules every module write follows to
// keep them exact. Shared by single writes (module-store) and whole-tree replacements
// (scope-replace, used by git sync), so there is one implementation of the bookkeeping.

/**
 * Locks the global view row (shared for an organization write, exclusive for a global
 * write) and the organization's row, and returns the scope's current sum. Global first,
 * always, so writers cannot deadlock; an organization write then sees a stable global module
 * at every path.
 */
export async function lockScopeStates(tx: SqlOrTx, scope: Scope): Promise<bigint> {
  if (scope.kind === "global") {
    const [row] = await tx<{ view_sum: Buffer }[]>`
      select view_sum from module_scope_states where organization_id is null for update`;
    return bytesToSum(row?.view_sum ?? Buffer.alloc(0));
  }
  await tx`select 1 from module_scope_states where organization_id is null for share`;
  try {
    await tx`insert into module_scope_states (organization_id) values (${scope.organizationId})
      on conflict (organization_id) do nothing`;
  } catch (error) {
    if (isForeignKeyViolation(error))
      throw notFound(`organization "${scope.organizationId}" not found`);
    throw error;
  }
  const [row] = await tx<{ view_sum: Buffer }[]>`
    select view_sum from module_scope_states where organization_id = ${scope.organizationId} for update`;
  return bytesToSum(row?.view_sum ?? Buffer.alloc(0));
}

/** Stores the scope's new sum and adjusts its module count and byte total. */
export async function writeScopeState(
  tx: SqlOrTx,
  organizationId: string | null,
  sum: bigint,
  countDelta: number,
  bytesDelta: number,
): Promise<void> {
  await tx`
    update module_scope_states
    set view_sum = ${sumToBytes(sum)}, module_count = module_count + ${countDelta},
      total_bytes = total_bytes + ${bytesDelta}, updated_at = now()
    where organization_id is not distinct from ${organizationId}`;
}

/**
 * Global modules at some paths changed, each from `before` to `after` (entry hashes; 0 for
 * absent). Every organization overriding such a path keeps its effective tree, so its delta
 * sum absorbs the change: delta(O) = Σ h(own) − h(global or nothing).
 */
export async function rebaseOverrides(
  tx: SqlOrTx,
  changes: ReadonlyMap<string, { before: bigint; after: bigint }>,
): Promise<void> {
  if (changes.size === 0) return;
  const paths = [...changes.keys()];
  const overrides = await tx<{ organization_id: string; path: string }[]>`
    select organization_id, path from modules
    where organization_id is not null and path = any(${paths}::text[])`;
  if (overrides.length === 0) return;
  const ids = [...new Set(overrides.map((o) => o.organization_id))].sort();
  const rows = await tx<{ organization_id: string; view_sum: Buffer }[]>`
    select organization_id, view_sum from module_scope_states
    where organization_id = any(${ids}::uuid[]) order by organization_id for update`;
  const sums = new Map(rows.map((r) => [r.organization_id, bytesToSum(r.view_sum)]));
  for (const { organization_id: id, path } of overrides) {
    const change = changes.get(path);
    const sum = sums.get(id);
    if (change === undefined || sum === undefined) continue;
    sums.set(id, addSum(subtractSum(sum, change.after), change.before));
  }
  // Sums travel as hex text: postgres.js does not serialize Buffer arrays as bytea[].
  const updatedIds = [...sums.keys()];
  const hex = updatedIds.map((id) => sumToBytes(sums.get(id) ?? 0n).toString("hex"));
  await tx`
    update module_scope_states s set view_sum = decode(u.view_sum, 'hex'), updated_at = now()
    from (select unnest(${updatedIds}::uuid[]) as organization_id, unnest(${hex}::text[]) as view_sum) u
    where s.organization_id = u.organization_id`;
}

/** Content hashes of the global modules at the given paths. */
export async function globalHashesAt(
  tx: SqlOrTx,
  paths: readonly string[],
): Promise<Map<string, string>> {
  if (paths.length === 0) return new Map();
  const rows = await tx<{ path: string; content_hash: string }[]>`
    select path, content_hash from modules
    where organization_id is null and path = any(${paths as string[]}::text[])`;
  return new Map(rows.map((r) => [r.path, r.content_hash]));
}

/**
 * Refuses a write through the API to a scope whose modules come from a git repository.
 * Called inside the write's transaction, after the scope lock, so a binding created
 * concurrently is either seen here or reconciled by its first sync.
 */
export async function assertNotGitBound(tx: SqlOrTx, scope: Scope): Promise<void> {
  const organizationId = scope.kind === "global" ? null : scope.organizationId;
  const [binding] = await tx<{ id: string; repository_url: string }[]>`
    select id, repository_url from git_bindings
    where organization_id is not distinct from ${organizationId}`;
  if (binding) {
    throw failedPrecondition(
      `${describeScope(scope)} is bound to git repository "${binding.repository_url}" (binding ${binding.id}); its modules are read-only: change them in the repository, or unbind it`,
    );
  }
}
