import {
  type handleUnaryCall,
  Metadata,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import type { Actor } from "../audit/audit-log.js";
import { AppError } from "../errors.js";
import type { IdentityStore } from "../identity/identity-store.js";
import type { Principal } from "../identity/principal.js";
import type { Logger } from "../log.js";

/** What a handler knows about the request besides its message. */
export interface RequestContext {
  principal: Principal;
  actor: Actor;
  log: Logger;
}

/**
 * An authorization rule: throws PERMISSION_DENIED (or INVALID_ARGUMENT for a malformed
 * field it needs) unless the principal may make this request. May look things up.
 */
export type Rule<Req> = (request: Req, principal: Principal) => void | Promise<void>;

/** Dependencies of the gRPC edge. */
export interface EdgeDeps {
  identity: IdentityStore;
  log: Logger;
  /** Told of every RPC's end: its status code and how long it took (metrics). */
  observe?: (method: string, code: status, durationMs: number) => void;
}

/**
 * Adapts an async handler to @grpc/grpc-js: authenticates the API key, applies the RPC's
 * authorization rule, runs the handler, and turns errors into statuses in one place —
 * AppError → its code and message; anything else → INTERNAL, logged in full, sent generic.
 */
export function unary<Req, Res>(
  deps: EdgeDeps,
  method: string,
  rule: Rule<Req>,
  handler: (request: Req, context: RequestContext) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const started = process.hrtime.bigint();
    const run = async () => {
      const header = call.metadata.get("authorization")[0];
      const principal = await deps.identity.authenticate(
        typeof header === "string" ? header : undefined,
      );
      await rule(call.request, principal);
      const log = deps.log.child({
        method,
        userId: principal.userId,
        apiKeyId: principal.apiKeyId,
      });
      return handler(call.request, {
        principal,
        actor: { userId: principal.userId, apiKeyId: principal.apiKeyId },
        log,
      });
    };
    const elapsedMs = () => Number(process.hrtime.bigint() - started) / 1e6;
    run().then(
      (response) => {
        const durationMs = elapsedMs();
        deps.log.debug({ method, durationMs }, "rpc ok");
        deps.observe?.(method, status.OK, durationMs);
        callback(null, response);
      },
      (error: unknown) => {
        if (error instanceof AppError) {
          deps.log.debug({ method, code: error.code, message: error.message }, "rpc refused");
          deps.observe?.(method, error.grpcStatus, elapsedMs());
          callback({ code: error.grpcStatus, details: error.message, metadata: new Metadata() });
          return;
        }
        deps.log.error({ err: error, method }, "rpc failed");
        deps.observe?.(method, status.INTERNAL, elapsedMs());
        callback({ code: status.INTERNAL, details: "internal error", metadata: new Metadata() });
      },
    );
  };
}
