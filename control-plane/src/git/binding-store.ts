import { randomBytes, randomUUID } from "node:crypto";
import { type Actor, recordAudit } from "../audit/audit-log.js";
import {
  isForeignKeyViolation,
  isUniqueViolation,
  type Sql,
  type SqlOrTx,
} from "../db/postgres.js";
import { alreadyExists, failedPrecondition, notFound } from "../errors.js";
import { describeScope, type Scope, scopeOfRow, scopeOrganizationId } from "../scope.js";
import { openSecret, type SecretKeyring, sealSecret } from "../secrets/secret-cipher.js";
import type { GitCredentialSecret } from "./git-client.js";
import type { RepositoryUrl } from "./repository-url.js";

/** Kinds of credential a binding can hold. */
export type CredentialKind = "none" | "token" | "ssh_key";

/** A binding as the API shows it: never the credential or the webhook secret. */
export interface GitBindingRecord {
  id: string;
  scope: Scope;
  repositoryUrl: string;
  repositoryKey: string;
  branch: string;
  subfolder: string;
  credentialKind: CredentialKind;
  pollIntervalSeconds: number;
  lastCommit: string | null;
  lastSyncedAt: Date | null;
  lastSyncId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Largest credential accepted (an SSH key is a few KiB). */
export const maxCredentialBytes = 16 * 1024;

interface BindingRow {
  id: string;
  organization_id: string | null;
  repository_url: string;
  repository_key: string;
  branch: string;
  subfolder: string;
  credential_kind: CredentialKind;
  poll_interval_seconds: number;
  last_commit: string | null;
  last_synced_at: Date | null;
  last_sync_id: string | null;
  created_at: Date;
  updated_at: Date;
}

const bindingColumns = `id, organization_id, repository_url, repository_key, branch, subfolder, credential_kind,
  poll_interval_seconds, last_commit, last_synced_at, last_sync_id, created_at, updated_at`;

function toRecord(row: BindingRow): GitBindingRecord {
  return {
    id: row.id,
    scope: scopeOfRow(row.organization_id),
    repositoryUrl: row.repository_url,
    repositoryKey: row.repository_key,
    branch: row.branch,
    subfolder: row.subfolder,
    credentialKind: row.credential_kind,
    pollIntervalSeconds: row.poll_interval_seconds,
    lastCommit: row.last_commit,
    lastSyncedAt: row.last_synced_at,
    lastSyncId: row.last_sync_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const credentialContext = (id: string) => `git-binding:${id}:credential`;
const webhookContext = (id: string) => `git-binding:${id}:webhook`;
const newWebhookSecret = () => `whsec_${randomBytes(32).toString("base64url")}`;

/** Git bindings: one repository per scope, one scope per repository. */
export interface GitBindingStore {
  create(
    actor: Actor,
    input: {
      scope: Scope;
      repository: RepositoryUrl;
      branch: string;
      subfolder: string;
      credential: GitCredentialSecret | undefined;
      pollIntervalSeconds: number;
      /**
       * Whether the caller may learn which scope holds a conflicting binding. Otherwise the
       * refusal says only "another scope": one organization must not learn another's id or
       * binding from a failed bind.
       */
      mayName?: (scope: Scope) => boolean;
    },
  ): Promise<{ binding: GitBindingRecord; webhookSecret: string }>;
  get(id: string): Promise<GitBindingRecord>;
  /** The binding of one scope, or every binding. */
  list(scope: Scope | undefined): Promise<GitBindingRecord[]>;
  update(
    actor: Actor,
    id: string,
    changes: {
      branch?: string;
      pollIntervalSeconds?: number;
      credential?: GitCredentialSecret | null;
      rotateWebhookSecret: boolean;
    },
  ): Promise<{ binding: GitBindingRecord; webhookSecret: string | undefined }>;
  delete(actor: Actor, id: string): Promise<void>;
  /** The decrypted credential for a fetch. */
  credential(id: string): Promise<GitCredentialSecret | undefined>;
  /** The webhook secret and branch, or undefined when there is no such binding. */
  webhook(id: string): Promise<{ secret: string; branch: string } | undefined>;
  /** Claims up to `limit` bindings whose poll is due, moving their next poll forward. */
  claimDuePolls(limit: number): Promise<string[]>;
  /**
   * Re-seals every credential and webhook secret sealed with another key than the active one
   * (after a key rotation, before the old key is dropped); returns how many bindings moved.
   */
  reseal(actor: Actor): Promise<number>;
}

/** Creates the binding store; credentials and webhook secrets are sealed with the keyring. */
export function createGitBindingStore(sql: Sql, keyring: SecretKeyring): GitBindingStore {
  async function fetchRow(tx: SqlOrTx, id: string): Promise<BindingRow> {
    const [row] = await tx<BindingRow[]>`
      select ${tx.unsafe(bindingColumns)} from git_bindings where id = ${id}`;
    if (!row) throw notFound(`git binding "${id}" not found`);
    return row;
  }

  // Clear messages for the two "one repo = one scope" rules; the unique constraints are the
  // guarantee, this names the binding in the way.
  async function assertFree(
    tx: SqlOrTx,
    scope: Scope,
    repository: RepositoryUrl,
    subfolder: string,
    mayName: (scope: Scope) => boolean,
  ): Promise<void> {
    const [bound] = await tx<{ id: string; repository_url: string }[]>`
      select id, repository_url from git_bindings
      where organization_id is not distinct from ${scopeOrganizationId(scope)}`;
    if (bound) {
      throw failedPrecondition(
        `${describeScope(scope)} is already bound to repository "${bound.repository_url}" (binding ${bound.id}); a scope has at most one binding: unbind it first`,
      );
    }
    // The same repository, at the same folder or one containing or inside it, would put the
    // same files in two scopes.
    const [other] = await tx<{ id: string; organization_id: string | null; subfolder: string }[]>`
      select id, organization_id, subfolder from git_bindings
      where repository_key = ${repository.key}
        and (subfolder = ${subfolder} or subfolder = '' or ${subfolder} = ''
          or starts_with(${subfolder}, subfolder || '/') or starts_with(subfolder, ${`${subfolder}/`}))
      limit 1`;
    if (other) {
      const holder = scopeOfRow(other.organization_id);
      if (!mayName(holder)) {
        throw alreadyExists(
          `repository "${repository.url}" (or a folder of it overlapping "${subfolder}") is already bound to another scope; a repository is bound to one scope`,
        );
      }
      const where = other.subfolder ? ` (subfolder "${other.subfolder}")` : "";
      throw alreadyExists(
        `repository "${repository.url}"${where} is already bound to ${describeScope(holder)} (binding ${other.id}); a repository is bound to one scope`,
      );
    }
  }

  function sealCredential(id: string, credential: GitCredentialSecret | undefined | null) {
    if (!credential) return { kind: "none" as const, keyId: null, nonce: null, ciphertext: null };
    const plaintext = credential.kind === "token" ? credential.token : credential.privateKey;
    const sealed = sealSecret(keyring, plaintext, credentialContext(id));
    return {
      kind: credential.kind,
      keyId: sealed.keyId,
      nonce: sealed.nonce,
      ciphertext: sealed.ciphertext,
    };
  }

  return {
    async create(actor, input) {
      const id = randomUUID();
      const organizationId = scopeOrganizationId(input.scope);
      const mayName = input.mayName ?? (() => false);
      const webhookSecret = newWebhookSecret();
      const webhook = sealSecret(keyring, webhookSecret, webhookContext(id));
      const credential = sealCredential(id, input.credential);
      try {
        const row = await sql.begin(async (tx) => {
          // Binds of one repository queue behind each other, so the overlap check holds.
          await tx`select pg_advisory_xact_lock(hashtext(${`git-bind:${input.repository.key}`}))`;
          await assertFree(tx, input.scope, input.repository, input.subfolder, mayName);
          const [inserted] = await tx<BindingRow[]>`
            insert into git_bindings (id, organization_id, repository_url, repository_key, branch, subfolder,
              credential_kind, credential_key_id, credential_nonce, credential_ciphertext,
              webhook_key_id, webhook_nonce, webhook_ciphertext, poll_interval_seconds, next_poll_at)
            values (${id}, ${organizationId}, ${input.repository.url}, ${input.repository.key}, ${input.branch},
              ${input.subfolder}, ${credential.kind}, ${credential.keyId}, ${credential.nonce}, ${credential.ciphertext},
              ${webhook.keyId}, ${webhook.nonce}, ${webhook.ciphertext}, ${input.pollIntervalSeconds},
              ${input.pollIntervalSeconds > 0 ? tx`now()` : null})
            returning ${tx.unsafe(bindingColumns)}`;
          await recordAudit(tx, actor, {
            organizationId,
            action: "git.bind",
            targetType: "git_binding",
            target: id,
            details: {
              repositoryUrl: input.repository.url,
              branch: input.branch,
              subfolder: input.subfolder,
              credentialKind: credential.kind,
              pollIntervalSeconds: input.pollIntervalSeconds,
            },
          });
          return inserted as BindingRow;
        });
        return { binding: toRecord(row), webhookSecret };
      } catch (error) {
        if (isForeignKeyViolation(error))
          throw notFound(`organization "${organizationId}" not found`);
        // A concurrent bind of the same scope won the race: report it like the check does.
        if (isUniqueViolation(error)) {
          await assertFree(sql, input.scope, input.repository, input.subfolder, mayName);
        }
        throw error;
      }
    },

    async get(id) {
      return toRecord(await fetchRow(sql, id));
    },

    async list(scope) {
      const rows = scope
        ? await sql<BindingRow[]>`
            select ${sql.unsafe(bindingColumns)} from git_bindings
            where organization_id is not distinct from ${scopeOrganizationId(scope)}`
        : await sql<BindingRow[]>`
            select ${sql.unsafe(bindingColumns)} from git_bindings order by created_at, id`;
      return rows.map(toRecord);
    },

    async update(actor, id, changes) {
      const webhookSecret = changes.rotateWebhookSecret ? newWebhookSecret() : undefined;
      const row = await sql.begin(async (tx) => {
        const before = await fetchRow(tx, id);
        const branch = changes.branch ?? before.branch;
        const poll = changes.pollIntervalSeconds ?? before.poll_interval_seconds;
        await tx`
          update git_bindings set branch = ${branch}, poll_interval_seconds = ${poll},
            next_poll_at = ${poll > 0 ? tx`coalesce(next_poll_at, now())` : null}, updated_at = now()
          where id = ${id}`;
        if (changes.credential !== undefined) {
          const credential = sealCredential(id, changes.credential);
          await tx`
            update git_bindings set credential_kind = ${credential.kind}, credential_key_id = ${credential.keyId},
              credential_nonce = ${credential.nonce}, credential_ciphertext = ${credential.ciphertext}
            where id = ${id}`;
        }
        if (webhookSecret) {
          const sealed = sealSecret(keyring, webhookSecret, webhookContext(id));
          await tx`
            update git_bindings set webhook_key_id = ${sealed.keyId}, webhook_nonce = ${sealed.nonce},
              webhook_ciphertext = ${sealed.ciphertext}
            where id = ${id}`;
        }
        await recordAudit(tx, actor, {
          organizationId: before.organization_id,
          action: "git.update",
          targetType: "git_binding",
          target: id,
          details: {
            branch,
            pollIntervalSeconds: poll,
            credentialChanged: changes.credential !== undefined,
            webhookSecretRotated: Boolean(webhookSecret),
          },
        });
        return fetchRow(tx, id);
      });
      return { binding: toRecord(row), webhookSecret };
    },

    async delete(actor, id) {
      await sql.begin(async (tx) => {
        const [row] = await tx<BindingRow[]>`
          delete from git_bindings where id = ${id} returning ${tx.unsafe(bindingColumns)}`;
        if (!row) throw notFound(`git binding "${id}" not found`);
        await recordAudit(tx, actor, {
          organizationId: row.organization_id,
          action: "git.unbind",
          targetType: "git_binding",
          target: id,
          details: { repositoryUrl: row.repository_url, lastCommit: row.last_commit },
        });
      });
    },

    async credential(id) {
      const [row] = await sql<
        {
          credential_kind: CredentialKind;
          credential_key_id: string | null;
          credential_nonce: Buffer | null;
          credential_ciphertext: Buffer | null;
        }[]
      >`
        select credential_kind, credential_key_id, credential_nonce, credential_ciphertext
        from git_bindings where id = ${id}`;
      if (!row) throw notFound(`git binding "${id}" not found`);
      if (row.credential_kind === "none" || !row.credential_ciphertext) return undefined;
      const plaintext = openSecret(
        keyring,
        {
          keyId: row.credential_key_id as string,
          nonce: row.credential_nonce as Buffer,
          ciphertext: row.credential_ciphertext,
        },
        credentialContext(id),
      );
      return row.credential_kind === "token"
        ? { kind: "token", token: plaintext }
        : { kind: "ssh_key", privateKey: plaintext };
    },

    async reseal(actor) {
      const stale = await sql<
        {
          id: string;
          organization_id: string | null;
          credential_key_id: string | null;
          credential_nonce: Buffer | null;
          credential_ciphertext: Buffer | null;
          webhook_key_id: string;
          webhook_nonce: Buffer;
          webhook_ciphertext: Buffer;
        }[]
      >`
        select id, organization_id, credential_key_id, credential_nonce, credential_ciphertext,
          webhook_key_id, webhook_nonce, webhook_ciphertext
        from git_bindings
        where webhook_key_id <> ${keyring.activeKeyId}
          or (credential_key_id is not null and credential_key_id <> ${keyring.activeKeyId})`;
      const moved = (keyId: string | null) => keyId !== null && keyId !== keyring.activeKeyId;
      for (const row of stale) {
        const credential =
          moved(row.credential_key_id) && row.credential_ciphertext
            ? sealSecret(
                keyring,
                openSecret(
                  keyring,
                  {
                    keyId: row.credential_key_id as string,
                    nonce: row.credential_nonce as Buffer,
                    ciphertext: row.credential_ciphertext,
                  },
                  credentialContext(row.id),
                ),
                credentialContext(row.id),
              )
            : undefined;
        const webhook = moved(row.webhook_key_id)
          ? sealSecret(
              keyring,
              openSecret(
                keyring,
                {
                  keyId: row.webhook_key_id,
                  nonce: row.webhook_nonce,
                  ciphertext: row.webhook_ciphertext,
                },
                webhookContext(row.id),
              ),
              webhookContext(row.id),
            )
          : undefined;
        await sql.begin(async (tx) => {
          // Only rows still sealed as read: a concurrent update (a rotated webhook secret, a
          // new credential) already sealed them with the active key and wins.
          if (credential) {
            await tx`update git_bindings set credential_key_id = ${credential.keyId},
                credential_nonce = ${credential.nonce}, credential_ciphertext = ${credential.ciphertext}
              where id = ${row.id} and credential_key_id = ${row.credential_key_id}
                and credential_nonce = ${row.credential_nonce}`;
          }
          if (webhook) {
            await tx`update git_bindings set webhook_key_id = ${webhook.keyId},
                webhook_nonce = ${webhook.nonce}, webhook_ciphertext = ${webhook.ciphertext}
              where id = ${row.id} and webhook_key_id = ${row.webhook_key_id}
                and webhook_nonce = ${row.webhook_nonce}`;
          }
          await recordAudit(tx, actor, {
            organizationId: row.organization_id,
            action: "git.reseal",
            targetType: "git_binding",
            target: row.id,
            details: {
              ...(credential && { credentialFromKeyId: row.credential_key_id }),
              ...(webhook && { webhookFromKeyId: row.webhook_key_id }),
              toKeyId: keyring.activeKeyId,
            },
          });
        });
      }
      return stale.length;
    },

    async webhook(id) {
      const [row] = await sql<
        {
          branch: string;
          webhook_key_id: string;
          webhook_nonce: Buffer;
          webhook_ciphertext: Buffer;
        }[]
      >`
        select branch, webhook_key_id, webhook_nonce, webhook_ciphertext from git_bindings where id = ${id}`;
      if (!row) return undefined;
      const secret = openSecret(
        keyring,
        { keyId: row.webhook_key_id, nonce: row.webhook_nonce, ciphertext: row.webhook_ciphertext },
        webhookContext(id),
      );
      return { secret, branch: row.branch };
    },

    async claimDuePolls(limit) {
      const rows = await sql<{ id: string }[]>`
        update git_bindings set next_poll_at = now() + make_interval(secs => poll_interval_seconds)
        where id in (
          select id from git_bindings
          where poll_interval_seconds > 0 and next_poll_at <= now()
          order by next_poll_at limit ${limit}
          for update skip locked)
        returning id`;
      return rows.map((r) => r.id);
    },
  };
}
