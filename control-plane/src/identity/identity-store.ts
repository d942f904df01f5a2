import { type Actor, recordAudit } from "../audit/audit-log.js";
import {
  isForeignKeyViolation,
  isUniqueViolation,
  type Sql,
  type SqlOrTx,
} from "../db/postgres.js";
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  notFound,
  unauthenticated,
} from "../errors.js";
import { apiKeyMatches, apiKeyPrefix, generateApiKey, hashApiKey, parseApiKey } from "./api-key.js";
import type { MembershipRole, Principal } from "./principal.js";

export interface UserRecord {
  id: string;
  email: string;
  displayName: string;
  platformAdmin: boolean;
  runner: boolean;
  createdAt: Date;
}

export interface MembershipRecord {
  userId: string;
  organizationId: string;
  role: MembershipRole;
  createdAt: Date;
}

export interface ApiKeyRecord {
  id: string;
  userId: string;
  name: string;
  prefix: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

/** Users, memberships and API keys, and turning a presented key into a Principal. */
export interface IdentityStore {
  authenticate(authorization: string | undefined): Promise<Principal>;
  /**
   * Listens for changes to keys, users, memberships and organizations made anywhere (the
   * database announces them, see `principalsChangedChannel`) and forgets remembered key
   * checks on each. Until this is called, only runner keys are remembered (see
   * `keyCheckMemoryMs`); while it runs, every key is.
   */
  followChanges(): Promise<{ close(): Promise<void> }>;
  /**
   * Runs `change`, forgetting every remembered key check before and after it: for a change
   * made through this replica in another store (an organization deactivated or deleted), so
   * this replica's next call does not wait for the database's announcement.
   */
  forgettingKeys<T>(change: () => Promise<T>): Promise<T>;
  createUser(
    actor: Actor,
    user: { email: string; displayName: string; platformAdmin: boolean; runner?: boolean },
    membership?: { organizationId: string; role: MembershipRole },
  ): Promise<UserRecord>;
  getUser(id: string): Promise<UserRecord>;
  listUsers(options: {
    organizationId?: string;
    after?: string;
    limit: number;
  }): Promise<UserRecord[]>;
  updateUser(
    actor: Actor,
    id: string,
    changes: { displayName?: string; platformAdmin?: boolean },
  ): Promise<UserRecord>;
  deleteUser(actor: Actor, id: string): Promise<void>;
  setMembership(
    actor: Actor,
    userId: string,
    organizationId: string,
    role: MembershipRole,
  ): Promise<MembershipRecord>;
  removeMembership(actor: Actor, userId: string, organizationId: string): Promise<void>;
  listMemberships(
    filter: { organizationId: string } | { userId: string },
  ): Promise<MembershipRecord[]>;
  /** Organizations in which the user is a member or admin. */
  organizationsOfUser(userId: string): Promise<string[]>;
  createApiKey(
    actor: Actor,
    userId: string,
    name: string,
    expiresAt: Date | undefined,
    presetKey?: string,
  ): Promise<{ apiKey: ApiKeyRecord; secret: string }>;
  getApiKey(id: string): Promise<ApiKeyRecord>;
  listApiKeys(userId: string): Promise<ApiKeyRecord[]>;
  revokeApiKey(actor: Actor, id: string): Promise<ApiKeyRecord>;
}

interface UserRow {
  id: string;
  email: string;
  display_name: string;
  platform_admin: boolean;
  kind: "human" | "runner";
  created_at: Date;
}

interface ApiKeyRow {
  id: string;
  user_id: string;
  name: string;
  lookup: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const toUser = (row: UserRow): UserRecord => ({
  id: row.id,
  email: row.email,
  displayName: row.display_name,
  platformAdmin: row.platform_admin,
  runner: row.kind === "runner",
  createdAt: row.created_at,
});

const toApiKey = (row: ApiKeyRow): ApiKeyRecord => ({
  id: row.id,
  userId: row.user_id,
  name: row.name,
  prefix: apiKeyPrefix(row.lookup),
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
  lastUsedAt: row.last_used_at,
});

// No whitespace, "@" or control characters (PostgreSQL text cannot even store NUL) in either part.
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const emailPattern = /^[^\s@\u0000-\u001f\u007f]+@[^\s@\u0000-\u001f\u007f]+$/;

/**
 * Checks an email address: present, at most 254 characters, one "@" with text on both sides,
 * no whitespace or control characters.
 */
export function validateEmail(email: string): string {
  const trimmed = email.trim();
  if (!trimmed) throw invalidArgument("email is required");
  if (trimmed.length > 254 || !emailPattern.test(trimmed)) {
    throw invalidArgument(
      `email ${JSON.stringify(trimmed.slice(0, 80))} is not a valid email address`,
    );
  }
  return trimmed;
}

function validateLabel(value: string, field: string, max: number): string {
  const trimmed = value.trim();
  if (trimmed.length > max)
    throw invalidArgument(`${field} is ${trimmed.length} characters; at most ${max} are allowed`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw invalidArgument(
      `${field} ${JSON.stringify(trimmed)} must not contain control characters`,
    );
  }
  return trimmed;
}

/**
 * How long a key check is remembered. The check is a join of keys, users, memberships and
 * organizations, ~1 ms and a statement on every RPC (a runner calls on every execution's path).
 * A change made through this replica forgets everything at once, before and after the write.
 * A change made anywhere else reaches every replica that follows changes (`followChanges`,
 * PostgreSQL NOTIFY from triggers) as soon as the notification does; this bound is for a
 * replica whose listening connection is down and reconnecting, which may miss one. A replica
 * that does not follow changes remembers only runner keys, for the same time.
 */
export const keyCheckMemoryMs = 5_000;
const rememberedKeysMax = 10_000;

/** Channel the database announces changes to keys, users, memberships and organizations on. */
export const principalsChangedChannel = "bifrost_principals_changed";

/** Creates the identity store. */
export function createIdentityStore(sql: Sql): IdentityStore {
  const rememberedKeys = new Map<
    string,
    { principal: Principal; until: number; expiresAt: Date | null }
  >();
  // Bumped on every forget: a check that read the database before a change and finishes
  // after its announcement must not remember what it read.
  let generation = 0;
  let following = 0;
  const forgetKeys = () => {
    rememberedKeys.clear();
    generation++;
  };
  // A change that decides whether a remembered key still holds forgets them all, before and
  // after (after: a check racing the change may have remembered the old state).
  async function forgettingKeys<T>(change: () => Promise<T>): Promise<T> {
    forgetKeys();
    try {
      return await change();
    } finally {
      forgetKeys();
    }
  }
  // Refuses to leave the platform without a platform admin.
  async function assertAnotherPlatformAdmin(tx: SqlOrTx, userId: string) {
    const [row] = await tx<{ others: string }[]>`
      select count(*) as others from users where platform_admin and id <> ${userId}`;
    if (Number(row?.others) === 0) {
      throw failedPrecondition(
        `user "${userId}" is the last platform admin; make another user platform admin first`,
      );
    }
  }

  return {
    async authenticate(authorization) {
      if (!authorization) {
        throw unauthenticated(
          'missing credentials: send metadata "authorization: Bearer <api key>"',
        );
      }
      const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
      if (!match) throw unauthenticated('authorization metadata must be "Bearer <api key>"');
      const parsed = parseApiKey(match[1] as string);
      if (!parsed) throw unauthenticated("api key is not valid");
      const remembered = rememberedKeys.get(match[1] as string);
      const now = Date.now();
      if (
        remembered &&
        remembered.until > now &&
        (!remembered.expiresAt || remembered.expiresAt.getTime() > now)
      ) {
        return remembered.principal;
      }
      const readAt = generation;
      const [row] = await sql<
        (ApiKeyRow & {
          secret_hash: Buffer;
          email: string;
          platform_admin: boolean;
          kind: string;
          memberships: Array<{ o: string; r: MembershipRole; a: boolean }>;
        })[]
      >`
        select k.id, k.user_id, k.secret_hash, k.expires_at, k.revoked_at, k.last_used_at,
          u.email, u.platform_admin, u.kind,
          coalesce(json_agg(json_build_object('o', m.organization_id, 'r', m.role, 'a', o.active))
            filter (where m.organization_id is not null), '[]') as memberships
        from api_keys k
        join users u on u.id = k.user_id
        left join memberships m on m.user_id = u.id
        left join organizations o on o.id = m.organization_id
        where k.lookup = ${parsed.lookup}
        group by k.id, u.id`;
      if (!row || !apiKeyMatches(parsed.key, row.secret_hash))
        throw unauthenticated("api key is not valid");
      if (row.revoked_at)
        throw unauthenticated(`api key "${apiKeyPrefix(parsed.lookup)}" has been revoked`);
      if (row.expires_at && row.expires_at.getTime() <= Date.now()) {
        throw unauthenticated(
          `api key "${apiKeyPrefix(parsed.lookup)}" expired at ${row.expires_at.toISOString()}`,
        );
      }
      // Record use at most once a minute per key, off the request's path.
      if (!row.last_used_at || Date.now() - row.last_used_at.getTime() > 60_000) {
        sql`update api_keys set last_used_at = now() where id = ${row.id}`.catch(() => {});
      }
      const principal: Principal = {
        userId: row.user_id,
        apiKeyId: row.id,
        email: row.email,
        platformAdmin: row.platform_admin,
        runner: row.kind === "runner",
        memberships: new Map(row.memberships.map((m) => [m.o, { role: m.r, active: m.a }])),
      };
      if ((principal.runner || following > 0) && generation === readAt) {
        if (rememberedKeys.size >= rememberedKeysMax) rememberedKeys.clear();
        rememberedKeys.set(match[1] as string, {
          principal,
          until: now + keyCheckMemoryMs,
          expiresAt: row.expires_at,
        });
      }
      return principal;
    },

    forgettingKeys,

    async followChanges() {
      // Called on every (re)subscription too: whatever changed while the connection was
      // down went unheard, so everything remembered before it is forgotten.
      const subscription = await sql.listen(principalsChangedChannel, forgetKeys, forgetKeys);
      following++;
      let closed = false;
      return {
        async close() {
          if (closed) return;
          closed = true;
          following--;
          forgetKeys();
          await subscription.unlisten();
        },
      };
    },

    async createUser(actor, user, membership) {
      if (user.runner && (user.platformAdmin || membership)) {
        throw invalidArgument(
          "a runner identity cannot be a platform admin or a member of an organization",
        );
      }
      const email = validateEmail(user.email);
      const displayName = validateLabel(user.displayName, "display_name", 200);
      try {
        return await sql.begin(async (tx) => {
          const [row] = await tx<UserRow[]>`
            insert into users (email, display_name, platform_admin, kind)
            values (${email}, ${displayName}, ${user.platformAdmin}, ${user.runner ? "runner" : "human"}) returning *`;
          const created = toUser(row as UserRow);
          await recordAudit(tx, actor, {
            organizationId: membership?.organizationId ?? null,
            action: "user.create",
            targetType: "user",
            target: created.id,
            details: { email, platformAdmin: user.platformAdmin, runner: user.runner === true },
          });
          if (membership) {
            await tx`insert into memberships (organization_id, user_id, role)
              values (${membership.organizationId}, ${created.id}, ${membership.role})`;
            await recordAudit(tx, actor, {
              organizationId: membership.organizationId,
              action: "membership.set",
              targetType: "membership",
              target: created.id,
              details: { role: membership.role },
            });
          }
          return created;
        });
      } catch (error) {
        if (isUniqueViolation(error))
          throw alreadyExists(`a user with email "${email}" already exists`);
        if (isForeignKeyViolation(error))
          throw notFound(`organization "${membership?.organizationId}" not found`);
        throw error;
      }
    },

    async getUser(id) {
      const [row] = await sql<UserRow[]>`select * from users where id = ${id}`;
      if (!row) throw notFound(`user "${id}" not found`);
      return toUser(row);
    },

    async listUsers({ organizationId, after, limit }) {
      const rows = await sql<UserRow[]>`
        select u.* from users u
        where ${after ? sql`u.id > ${after}` : sql`true`}
          and ${organizationId ? sql`exists (select 1 from memberships m where m.user_id = u.id and m.organization_id = ${organizationId})` : sql`true`}
        order by u.id limit ${limit}`;
      return rows.map(toUser);
    },

    async updateUser(actor, id, changes) {
      const displayName =
        changes.displayName === undefined
          ? null
          : validateLabel(changes.displayName, "display_name", 200);
      return forgettingKeys(() =>
        sql.begin(async (tx) => {
          const [current] = await tx<UserRow[]>`select * from users where id = ${id} for update`;
          if (!current) throw notFound(`user "${id}" not found`);
          if (current.platform_admin && changes.platformAdmin === false)
            await assertAnotherPlatformAdmin(tx, id);
          const [row] = await tx<UserRow[]>`
          update users set display_name = coalesce(${displayName}, display_name),
            platform_admin = coalesce(${changes.platformAdmin ?? null}::boolean, platform_admin),
            updated_at = now()
          where id = ${id} returning *`;
          await recordAudit(tx, actor, {
            organizationId: null,
            action: "user.update",
            targetType: "user",
            target: id,
            details: {
              ...(displayName !== null && { displayName }),
              ...(changes.platformAdmin !== undefined && { platformAdmin: changes.platformAdmin }),
            },
          });
          return toUser(row as UserRow);
        }),
      );
    },

    async deleteUser(actor, id) {
      await forgettingKeys(() =>
        sql.begin(async (tx) => {
          const [current] = await tx<UserRow[]>`select * from users where id = ${id} for update`;
          if (!current) throw notFound(`user "${id}" not found`);
          if (current.platform_admin) await assertAnotherPlatformAdmin(tx, id);
          await tx`delete from users where id = ${id}`;
          await recordAudit(tx, actor, {
            organizationId: null,
            action: "user.delete",
            targetType: "user",
            target: id,
            details: { email: current.email },
          });
        }),
      );
    },

    async setMembership(actor, userId, organizationId, role) {
      try {
        return await forgettingKeys(() =>
          sql.begin(async (tx) => {
            const [row] = await tx<
              { user_id: string; organization_id: string; role: MembershipRole; created_at: Date }[]
            >`
            insert into memberships (organization_id, user_id, role) values (${organizationId}, ${userId}, ${role})
            on conflict (organization_id, user_id) do update set role = excluded.role
            returning *`;
            await recordAudit(tx, actor, {
              organizationId,
              action: "membership.set",
              targetType: "membership",
              target: userId,
              details: { role },
            });
            return {
              userId: row?.user_id as string,
              organizationId: row?.organization_id as string,
              role: row?.role as MembershipRole,
              createdAt: row?.created_at as Date,
            };
          }),
        );
      } catch (error) {
        if (isForeignKeyViolation(error)) {
          const detail = String((error as { detail?: string }).detail ?? "");
          throw detail.includes("user_id")
            ? notFound(`user "${userId}" not found`)
            : notFound(`organization "${organizationId}" not found`);
        }
        throw error;
      }
    },

    async removeMembership(actor, userId, organizationId) {
      await forgettingKeys(() =>
        sql.begin(async (tx) => {
          const deleted = await tx`
          delete from memberships where organization_id = ${organizationId} and user_id = ${userId} returning 1`;
          if (deleted.length === 0) {
            throw notFound(`user "${userId}" is not a member of organization "${organizationId}"`);
          }
          await recordAudit(tx, actor, {
            organizationId,
            action: "membership.remove",
            targetType: "membership",
            target: userId,
          });
        }),
      );
    },

    async listMemberships(filter) {
      const rows = await sql<
        { user_id: string; organization_id: string; role: MembershipRole; created_at: Date }[]
      >`
        select * from memberships
        where ${"organizationId" in filter ? sql`organization_id = ${filter.organizationId}` : sql`user_id = ${filter.userId}`}
        order by organization_id, user_id`;
      return rows.map((row) => ({
        userId: row.user_id,
        organizationId: row.organization_id,
        role: row.role,
        createdAt: row.created_at,
      }));
    },

    async organizationsOfUser(userId) {
      const rows = await sql<{ organization_id: string }[]>`
        select organization_id from memberships where user_id = ${userId}`;
      return rows.map((r) => r.organization_id);
    },

    async createApiKey(actor, userId, rawName, expiresAt, presetKey) {
      const name = validateLabel(rawName, "name", 100);
      if (!name) throw invalidArgument("name is required and must not be blank");
      if (expiresAt && expiresAt.getTime() <= Date.now()) {
        throw invalidArgument(`expires_at ${expiresAt.toISOString()} must be in the future`);
      }
      const generated = presetKey === undefined ? generateApiKey() : parseApiKey(presetKey);
      if (!generated)
        throw invalidArgument('the preset api key must look like "bfk_<16 hex>_<43 base64url>"');
      try {
        return await sql.begin(async (tx) => {
          const [row] = await tx<ApiKeyRow[]>`
            insert into api_keys (user_id, name, lookup, secret_hash, expires_at)
            values (${userId}, ${name}, ${generated.lookup}, ${hashApiKey(generated.key)}, ${expiresAt ?? null})
            returning *`;
          await recordAudit(tx, actor, {
            organizationId: null,
            action: "api_key.create",
            targetType: "api_key",
            target: row?.id as string,
            details: { userId, name, prefix: apiKeyPrefix(generated.lookup) },
          });
          return { apiKey: toApiKey(row as ApiKeyRow), secret: generated.key };
        });
      } catch (error) {
        if (isForeignKeyViolation(error)) throw notFound(`user "${userId}" not found`);
        if (isUniqueViolation(error))
          throw alreadyExists("an api key with this lookup already exists");
        throw error;
      }
    },

    async getApiKey(id) {
      const [row] = await sql<ApiKeyRow[]>`select * from api_keys where id = ${id}`;
      if (!row) throw notFound(`api key "${id}" not found`);
      return toApiKey(row);
    },

    async listApiKeys(userId) {
      const rows = await sql<
        ApiKeyRow[]
      >`select * from api_keys where user_id = ${userId} order by created_at, id`;
      return rows.map(toApiKey);
    },

    async revokeApiKey(actor, id) {
      return forgettingKeys(() =>
        sql.begin(async (tx) => {
          const [row] = await tx<ApiKeyRow[]>`
          update api_keys set revoked_at = coalesce(revoked_at, now()) where id = ${id} returning *`;
          if (!row) throw notFound(`api key "${id}" not found`);
          await recordAudit(tx, actor, {
            organizationId: null,
            action: "api_key.revoke",
            targetType: "api_key",
            target: id,
            details: { userId: row.user_id, prefix: apiKeyPrefix(row.lookup) },
          });
          return toApiKey(row);
        }),
      );
    },
  };
}
