import {
  type handleServerStreamingCall,
  Metadata,
  type ServerWritableStream,
  status,
} from "@grpc/grpc-js";
import { AppError } from "../errors.js";
import type { EdgeDeps, RequestContext, Rule } from "./unary.js";

/**
 * Adapts an async streaming handler to @grpc/grpc-js with the same edge as unary calls:
 * authenticate, apply the RPC's rule, map errors to statuses in one place. The handler
 * writes with `send` and should return when done or when `signal` aborts (the client left).
 */
export function serverStream<Req, Res>(
  deps: EdgeDeps,
  method: string,
  rule: Rule<Req>,
  handler: (
    request: Req,
    context: RequestContext & { send: (message: Res) => void; signal: AbortSignal },
  ) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call: ServerWritableStream<Req, Res>) => {
    const started = process.hrtime.bigint();
    const observe = (code: status) =>
      deps.observe?.(method, code, Number(process.hrtime.bigint() - started) / 1e6);
    const abort = new AbortController();
    call.on("cancelled", () => abort.abort());
    const run = async () => {
      const header = call.metadata.get("authorization")[0];
      const principal = await deps.identity.authenticate(
        typeof header === "string" ? header : undefined,
      );
      await rule(call.request, principal);
      await handler(call.request, {
        principal,
        actor: { userId: principal.userId, apiKeyId: principal.apiKeyId },
        log: deps.log.child({ method, userId: principal.userId }),
        send: (message) => {
          if (!abort.signal.aborted) call.write(message);
        },
        signal: abort.signal,
      });
    };
    run().then(
      () => {
        // A stream the client left ends as CANCELLED, as grpc-js reports it.
        observe(abort.signal.aborted ? status.CANCELLED : status.OK);
        call.end();
      },
      (error: unknown) => {
        if (error instanceof AppError) {
          observe(error.grpcStatus);
          call.emit("error", {
            code: error.grpcStatus,
            details: error.message,
            metadata: new Metadata(),
          });
          return;
        }
        deps.log.error({ err: error, method }, "rpc failed");
        observe(status.INTERNAL);
        call.emit("error", {
          code: status.INTERNAL,
          details: "internal error",
          metadata: new Metadata(),
        });
      },
    );
  };
}
