import {
  type GitBindingServiceServer,
  GitCredentialKind,
  GitSkipReason,
  GitSyncStatus,
  GitSyncTrigger,
  type GitCredential as ProtoCredential,
  type GitBinding as ProtoGitBinding,
  type GitSync as ProtoGitSync,
} from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import { invalidArgument } from "../errors.js";
import {
  decodePageToken,
  encodePageToken,
  isTimestampUuidPosition,
  pageSize,
} from "../grpc/pagination.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
import { parseUuid, scopeFromProto, scopeToProto } from "../scope.js";
import {
  type GitBindingRecord,
  type GitBindingStore,
  maxCredentialBytes,
} from "./binding-store.js";
import type { GitCredentialSecret } from "./git-client.js";
import type { GitSyncer } from "./git-sync.js";
import {
  assertPublicHost,
  parseRepositoryUrl,
  type RepositoryUrl,
  type RepositoryUrlRules,
  validateBranch,
  validateSubfolder,
} from "./repository-url.js";
import type { GitSyncRecord, GitSyncStore } from "./sync-store.js";
import type { SkipReason } from "./tree-plan.js";
import { webhookPath } from "./webhook-server.js";

const credentialKinds = {
  none: GitCredentialKind.GIT_CREDENTIAL_KIND_NONE,
  token: GitCredentialKind.GIT_CREDENTIAL_KIND_TOKEN,
  ssh_key: GitCredentialKind.GIT_CREDENTIAL_KIND_SSH_KEY,
} as const;
const syncStatuses = {
  running: GitSyncStatus.GIT_SYNC_STATUS_RUNNING,
  succeeded: GitSyncStatus.GIT_SYNC_STATUS_SUCCEEDED,
  failed: GitSyncStatus.GIT_SYNC_STATUS_FAILED,
} as const;
const syncTriggers = {
  manual: GitSyncTrigger.GIT_SYNC_TRIGGER_MANUAL,
  schedule: GitSyncTrigger.GIT_SYNC_TRIGGER_SCHEDULE,
  webhook: GitSyncTrigger.GIT_SYNC_TRIGGER_WEBHOOK,
} as const;
const skipReasons: Record<SkipReason, GitSkipReason> = {
  symlink: GitSkipReason.GIT_SKIP_REASON_SYMLINK,
  submodule: GitSkipReason.GIT_SKIP_REASON_SUBMODULE,
  oversized: GitSkipReason.GIT_SKIP_REASON_OVERSIZED,
  invalid_path: GitSkipReason.GIT_SKIP_REASON_INVALID_PATH,
  binary: GitSkipReason.GIT_SKIP_REASON_BINARY,
  outside_subfolder: GitSkipReason.GIT_SKIP_REASON_OUTSIDE_SUBFOLDER,
};

function syncToProto(sync: GitSyncRecord): ProtoGitSync {
  const finished = sync.finishedAt ?? undefined;
  return {
    id: sync.id,
    bindingId: sync.bindingId,
    trigger: syncTriggers[sync.trigger],
    status: syncStatuses[sync.status],
    commitBefore: sync.commitBefore ?? "",
    commitAfter: sync.commitAfter ?? "",
    added: sync.added,
    updated: sync.updated,
    deleted: sync.deleted,
    unchangedCount: sync.unchangedCount,
    skipped: sync.skipped.map((s) => ({
      path: s.path,
      reason: skipReasons[s.reason],
      detail: s.detail,
    })),
    skippedCount: sync.skippedCount,
    error: sync.error ?? "",
    startedAt: sync.startedAt,
    finishedAt: finished,
    durationMs: finished ? Math.max(0, finished.getTime() - sync.startedAt.getTime()) : 0,
  };
}

/** Checks a credential against the URL's transport and size limit. */
function credentialFromProto(
  credential: ProtoCredential | undefined,
  repository: RepositoryUrl,
): GitCredentialSecret | undefined {
  const kind = credential?.kind;
  if (!kind) return undefined;
  if (Buffer.byteLength(kind.value) > maxCredentialBytes || kind.value.trim() === "") {
    throw invalidArgument(
      `credential must be 1 to ${maxCredentialBytes} bytes (got ${Buffer.byteLength(kind.value)})`,
    );
  }
  if (kind.$case === "token") {
    if (repository.scheme !== "https" && repository.scheme !== "http") {
      throw invalidArgument(
        `a token credential needs an https:// repository URL; "${repository.url}" uses ${repository.scheme}`,
      );
    }
    if (/[\r\n]/.test(kind.value)) throw invalidArgument("token must be a single line");
    return { kind: "token", token: kind.value };
  }
  if (repository.scheme !== "ssh") {
    throw invalidArgument(
      `an ssh_private_key credential needs an ssh repository URL; "${repository.url}" uses ${repository.scheme}`,
    );
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(kind.value)) {
    throw invalidArgument("ssh_private_key must be an OpenSSH/PEM private key");
  }
  return { kind: "ssh_key", privateKey: kind.value };
}

/** gRPC handlers of GitBindingService. */
export function createGitBindingService(
  edge: EdgeDeps,
  policy: Policy,
  deps: {
    bindings: GitBindingStore;
    syncs: GitSyncStore;
    syncer: GitSyncer;
    rules: RepositoryUrlRules;
    /** Smallest poll interval a binding may ask for. */
    minPollSeconds: number;
  },
): GitBindingServiceServer {
  const rules = policy.GitBindingService;
  const { bindings, syncs, syncer } = deps;

  async function toProto(binding: GitBindingRecord): Promise<ProtoGitBinding> {
    const last = binding.lastSyncId
      ? await syncs.get(binding.lastSyncId).catch(() => undefined)
      : undefined;
    return toProtoWith(binding, last);
  }

  function toProtoWith(
    binding: GitBindingRecord,
    last: GitSyncRecord | undefined,
  ): ProtoGitBinding {
    return {
      id: binding.id,
      scope: scopeToProto(binding.scope),
      repositoryUrl: binding.repositoryUrl,
      branch: binding.branch,
      subfolder: binding.subfolder,
      credentialKind: credentialKinds[binding.credentialKind],
      pollIntervalSeconds: binding.pollIntervalSeconds,
      lastCommit: binding.lastCommit ?? "",
      lastSyncedAt: binding.lastSyncedAt ?? undefined,
      lastSyncStatus: last ? syncStatuses[last.status] : GitSyncStatus.GIT_SYNC_STATUS_UNSPECIFIED,
      lastSyncError: last?.error ?? "",
      webhookPath: webhookPath(binding.id),
      createdAt: binding.createdAt,
      updatedAt: binding.updatedAt,
    };
  }

  function pollInterval(seconds: number): number {
    if (seconds !== 0 && seconds < deps.minPollSeconds) {
      throw invalidArgument(
        `poll_interval_seconds ${seconds} is too short; use 0 (no polling) or at least ${deps.minPollSeconds}`,
      );
    }
    if (seconds > 7 * 24 * 3600) {
      throw invalidArgument(`poll_interval_seconds ${seconds} is over a week; at most 604800`);
    }
    return seconds;
  }

  return {
    bindRepository: unary(
      edge,
      "BindRepository",
      rules.BindRepository,
      async (req, { actor, principal }) => {
        const scope = scopeFromProto(req.scope);
        const repository = parseRepositoryUrl(req.repositoryUrl, deps.rules);
        await assertPublicHost(repository, deps.rules);
        const { binding, webhookSecret } = await bindings.create(actor, {
          scope,
          repository,
          branch: validateBranch(req.branch),
          subfolder: validateSubfolder(req.subfolder),
          credential: credentialFromProto(req.credential, repository),
          pollIntervalSeconds: pollInterval(req.pollIntervalSeconds),
          // Name a conflicting binding only to someone who administers its scope.
          mayName: (holder) =>
            principal.platformAdmin ||
            (holder.kind === "organization" &&
              principal.memberships.get(holder.organizationId)?.role === "admin"),
        });
        return { binding: await toProto(binding), webhookSecret };
      },
    ),

    getGitBinding: unary(edge, "GetGitBinding", rules.GetGitBinding, async (req) => ({
      binding: await toProto(await bindings.get(parseUuid(req.id, "id"))),
    })),

    listGitBindings: unary(edge, "ListGitBindings", rules.ListGitBindings, async (req) => {
      const scope = req.scope?.kind ? scopeFromProto(req.scope) : undefined;
      const rows = await bindings.list(scope);
      // Every binding's last run in one query, not one per binding.
      const lastSyncs = await syncs.getMany(
        rows.flatMap((row) => (row.lastSyncId ? [row.lastSyncId] : [])),
      );
      return {
        bindings: rows.map((row) =>
          toProtoWith(row, row.lastSyncId ? lastSyncs.get(row.lastSyncId) : undefined),
        ),
      };
    }),

    updateGitBinding: unary(
      edge,
      "UpdateGitBinding",
      rules.UpdateGitBinding,
      async (req, { actor }) => {
        const id = parseUuid(req.id, "id");
        if (req.credential?.kind && req.clearCredential) {
          throw invalidArgument("set only one of credential and clear_credential");
        }
        const current = await bindings.get(id);
        const repository = parseRepositoryUrl(current.repositoryUrl, {
          ...deps.rules,
          allowPrivateHosts: true,
        });
        const credential = req.clearCredential
          ? null
          : credentialFromProto(req.credential, repository);
        const { binding, webhookSecret } = await bindings.update(actor, id, {
          ...(req.branch !== undefined && { branch: validateBranch(req.branch) }),
          ...(req.pollIntervalSeconds !== undefined && {
            pollIntervalSeconds: pollInterval(req.pollIntervalSeconds),
          }),
          ...(credential !== undefined && { credential }),
          rotateWebhookSecret: req.rotateWebhookSecret,
        });
        return { binding: await toProto(binding), webhookSecret: webhookSecret ?? "" };
      },
    ),

    unbindRepository: unary(
      edge,
      "UnbindRepository",
      rules.UnbindRepository,
      async (req, { actor }) => {
        await bindings.delete(actor, parseUuid(req.id, "id"));
        return {};
      },
    ),

    syncGitBinding: unary(edge, "SyncGitBinding", rules.SyncGitBinding, async (req, { actor }) => {
      const { sync, joined } = await syncer.sync(parseUuid(req.id, "id"), "manual", actor);
      return { sync: sync ? syncToProto(sync) : undefined, joined };
    }),

    listGitSyncs: unary(edge, "ListGitSyncs", rules.ListGitSyncs, async (req) => {
      const limit = pageSize(req.pageSize, { default: 20, max: 100 });
      const before = decodePageToken(req.pageToken, isTimestampUuidPosition);
      const rows = await syncs.list(parseUuid(req.bindingId, "binding_id"), { before, limit });
      const last = rows.length === limit ? rows[rows.length - 1] : undefined;
      return {
        syncs: rows.map(syncToProto),
        nextPageToken: last ? encodePageToken(last.position) : "",
      };
    }),

    getGitSync: unary(edge, "GetGitSync", rules.GetGitSync, async (req) => ({
      sync: syncToProto(await syncs.get(parseUuid(req.id, "id"))),
    })),
  };
}
