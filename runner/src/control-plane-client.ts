import { RunnerServiceClient } from "@bifrost/proto";
import {
  type CallOptions,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
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

/** Connects to the control plane's gRPC address (host:port). */
export function connectControlPlane(address: string, apiKey: string): ControlPlaneClient {
  const client = new RunnerServiceClient(address, credentials.createInsecure(), {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
  });
  const call =
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
  return {
    claimExecution: call(client.claimExecution),
    getExecutionView: call(client.getExecutionView),
    getExecutionModules: call(client.getExecutionModules),
    executionCall: call(client.executionCall),
    reportExecutionEvents: call(client.reportExecutionEvents),
    completeExecution: call(client.completeExecution),
    runnerHeartbeat: call(client.runnerHeartbeat),
    listRunners: call(client.listRunners),
    close: () => client.close(),
  };
}
