import type { Secret, SecretServiceServer } from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import { provenanceToProto } from "../grpc/provenance.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
import { parseUuid, scopeFromProto, scopeToProto } from "../scope.js";
import type { SecretRecord, SecretStore } from "./secret-store.js";

const toProto = (secret: SecretRecord): Secret => ({
  scope: scopeToProto(secret.scope),
  name: secret.name,
  description: secret.description,
  keyId: secret.keyId,
  createdAt: secret.createdAt,
  updatedAt: secret.updatedAt,
});

/** gRPC handlers of SecretService: write-only values, readable metadata. */
export function createSecretService(
  edge: EdgeDeps,
  policy: Policy,
  secrets: SecretStore,
): SecretServiceServer {
  const rules = policy.SecretService;
  return {
    setSecret: unary(edge, "SetSecret", rules.SetSecret, async (req, { actor }) => ({
      secret: toProto(
        await secrets.set(actor, scopeFromProto(req.scope), req.name, req.value, req.description),
      ),
    })),

    deleteSecret: unary(edge, "DeleteSecret", rules.DeleteSecret, async (req, { actor }) => {
      await secrets.delete(actor, scopeFromProto(req.scope), req.name);
      return {};
    }),

    listSecrets: unary(edge, "ListSecrets", rules.ListSecrets, async (req) => ({
      secrets: (await secrets.list(scopeFromProto(req.scope))).map(toProto),
    })),

    listEffectiveSecrets: unary(
      edge,
      "ListEffectiveSecrets",
      rules.ListEffectiveSecrets,
      async (req) => ({
        secrets: (
          await secrets.listEffective(parseUuid(req.organizationId, "organization_id"))
        ).map((e) => ({
          secret: toProto(e.secret),
          provenance: provenanceToProto(e.provenance),
        })),
      }),
    ),
  };
}
