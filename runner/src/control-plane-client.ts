import { RunnerServiceClient } from "@bifrost/proto";
import {
  type CallOptions,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";

type Unary<R, S> = (
  request: R,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: S) => void,
) => ClientUnaryCall;

type Call<M> = M extends Unary<infer R, infer S> ? (request: R) => Promise<S> : never;

/** The RunnerService calls a runner makes, authenticated with its runner API key. */
export interface ControlPlaneClient {
  claimExecution: Call<RunnerServiceClient["claimExecution"]>;
  getExecutionView: Call<RunnerServiceClient["getExecutionView"]>;
  getExecutionModules: Call<RunnerServiceClient["getExecutionModules"]>;
  executionCall: Call<RunnerServiceClient["executionCall"]>;
  reportExecutionEvents: Call<RunnerServiceClient["reportExecutionEvents"]>;
  completeExecution: Call<RunnerServiceClient["completeExecution"]>;
  runnerHeartbeat: Call<RunnerServiceClient["runnerHeartbeat"]>;
  listRunners: Call<RunnerServiceClient["listRunners"]>;
  close(): void;
}

/**
 * How long a call keeps trying while the control plane cannot be reached (UNAVAILABLE: it is
 * restarting, or the network blips). Giving up early is costly: a failed claim burns one of
 * the job's deliveries, a failed SDK call fails the workflow, and a failed completion throws
 * away a finished run, which is then run again. The job stays ours meanwhile (progress acks
 * go on), so waiting is safe.
 */
export const defaultUnavailableRetryMs = 120_000;

/**
 * Connects to the control plane's gRPC address (host:port). Calls that fail with UNAVAILABLE
 * are retried with backoff for up to `retryUnavailableMs` (the heartbeat is not: it beats
 * again anyway). Every call here is safe to repeat: a repeated claim mints a fresh token for
 * the same attempt, and a completion whose first try was recorded is refused as ended, which
 * the job's redelivery then acknowledges.
 */
export function connectControlPlane(
  address: string,
  apiKey: string,
  options: { retryUnavailableMs?: number } = {},
): ControlPlaneClient {
  const retryMs = options.retryUnavailableMs ?? defaultUnavailableRetryMs;
  const client = new RunnerServiceClient(address, credentials.createInsecure(), {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    // grpc-js backs reconnects off up to 120 s by default: a control plane that was down
    // for a minute would then wait that long for its runners. Reconnect within 2 s instead.
    "grpc.initial_reconnect_backoff_ms": 250,
    "grpc.max_reconnect_backoff_ms": 2_000,
    // No channelz is served from the runner: its per-call bookkeeping would be for no one.
    "grpc.enable_channelz": 0,
  });
  const once =
    <R, S>(method: Unary<R, S>) =>
    (request: R) =>
      new Promise<S>((resolve, reject) => {
        const metadata = new Metadata();
        metadata.set("authorization", `Bearer ${apiKey}`);
        method.call(
          client,
          request,
          metadata,
          { deadline: Date.now() + 30_000 },
          (error, response) => (error ? reject(error) : resolve(response)),
        );
      });
  const call =
    <R, S>(method: Unary<R, S>) =>
    async (request: R) => {
      const giveUpAt = Date.now() + retryMs;
      for (let pause = 100; ; pause = Math.min(pause * 2, 1_000)) {
        try {
          return await once(method)(request);
        } catch (error) {
          const unavailable = (error as Partial<ServiceError>).code === status.UNAVAILABLE;
          if (!unavailable || Date.now() + pause > giveUpAt) throw error;
          await new Promise((resolve) => setTimeout(resolve, pause));
        }
      }
    };
  return {
    claimExecution: call(client.claimExecution),
    getExecutionView: call(client.getExecutionView),
    getExecutionModules: call(client.getExecutionModules),
    executionCall: call(client.executionCall),
    reportExecutionEvents: call(client.reportExecutionEvents),
    completeExecution: call(client.completeExecution),
    runnerHeartbeat: once(client.runnerHeartbeat),
    listRunners: call(client.listRunners),
    close: () => client.close(),
  };
}
