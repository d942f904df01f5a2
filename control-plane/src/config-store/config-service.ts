import type { ConfigEntry, ConfigServiceServer } from "@bifrost/proto";
import type { Policy } from "../auth/policy.js";
import { provenanceToProto } from "../grpc/provenance.js";
import { type EdgeDeps, unary } from "../grpc/unary.js";
import { parseUuid, scopeFromProto, scopeToProto } from "../scope.js";
import type { ConfigRecord, ConfigStore } from "./config-store.js";
import { configValueFromProto, configValueToProto } from "./config-value.js";

const toProto = (entry: ConfigRecord): ConfigEntry => ({
  scope: scopeToProto(entry.scope),
  key: entry.key,
  value: configValueToProto(entry.value),
  description: entry.description,
  updatedAt: entry.updatedAt,
});

/** gRPC handlers of ConfigService. */
export function createConfigService(
  edge: EdgeDeps,
  policy: Policy,
  config: ConfigStore,
): ConfigServiceServer {
  const rules = policy.ConfigService;
  return {
    setConfig: unary(edge, "SetConfig", rules.SetConfig, async (req, { actor }) => ({
      entry: toProto(
        await config.set(
          actor,
          scopeFromProto(req.scope),
          req.key,
          configValueFromProto(req.value),
          req.description,
        ),
      ),
    })),

    getConfig: unary(edge, "GetConfig", rules.GetConfig, async (req) => ({
      entry: toProto(await config.get(scopeFromProto(req.scope), req.key)),
    })),

    resolveConfig: unary(edge, "ResolveConfig", rules.ResolveConfig, async (req) => {
      const fallback = req.defaultValue?.kind
        ? configValueFromProto(req.defaultValue, "default_value")
        : undefined;
      const resolved = await config.resolve(
        parseUuid(req.organizationId, "organization_id"),
        req.key,
      );
      if (resolved) {
        return {
          found: true,
          value: configValueToProto(resolved.entry.value),
          provenance: provenanceToProto(resolved.provenance),
        };
      }
      return {
        found: false,
        value: fallback ? configValueToProto(fallback) : undefined,
        provenance: 0,
      };
    }),

    deleteConfig: unary(edge, "DeleteConfig", rules.DeleteConfig, async (req, { actor }) => {
      await config.delete(actor, scopeFromProto(req.scope), req.key);
      return {};
    }),

    listConfig: unary(edge, "ListConfig", rules.ListConfig, async (req) => ({
      entries: (await config.list(scopeFromProto(req.scope))).map(toProto),
    })),

    listEffectiveConfig: unary(
      edge,
      "ListEffectiveConfig",
      rules.ListEffectiveConfig,
      async (req) => ({
        entries: (await config.listEffective(parseUuid(req.organizationId, "organization_id"))).map(
          (e) => ({
            entry: toProto(e.entry),
            provenance: provenanceToProto(e.provenance),
          }),
        ),
      }),
    ),
  };
}
