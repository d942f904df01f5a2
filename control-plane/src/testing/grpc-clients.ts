import {
  AuditServiceClient,
  ConfigServiceClient,
  ExecutionServiceClient,
  GitBindingServiceClient,
  IdentityServiceClient,
  ModuleServiceClient,
  OrganizationServiceClient,
  SecretServiceClient,
  type WatchExecutionRequest,
  type WatchExecutionResponse,
  WorkflowServiceClient,
} from "@bifrost/proto";
import {
  type CallOptions,
  type Client,
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

/** A generated grpc-js client with each unary method turned into `(request) => Promise<response>`. */
export type Promisified<C> = {
  [K in keyof C as C[K] extends Unary<infer _R, infer _S> ? K : never]: C[K] extends Unary<
    infer R,
    infer S
  >
    ? (request: R) => Promise<S>
    : never;
};

function promisify<C extends Client>(client: C, apiKey: string | undefined): Promisified<C> {
  return new Proxy({} as Promisified<C>, {
    get(_target, name: string) {
      const method = (client as unknown as Record<string, Unary<unknown, unknown>>)[name];
      if (typeof method !== "function") return undefined;
      return (request: unknown) =>
        new Promise((resolve, reject) => {
          const metadata = new Metadata();
          if (apiKey !== undefined) metadata.set("authorization", `Bearer ${apiKey}`);
          method.call(client, request, metadata, {}, (error, response) =>
            error ? reject(error) : resolve(response),
          );
        });
    },
  });
}

/** Promise clients for every service, authenticating with one API key (or none). */
export interface ApiClients {
  organizations: Promisified<OrganizationServiceClient>;
  identity: Promisified<IdentityServiceClient>;
  modules: Promisified<ModuleServiceClient>;
  config: Promisified<ConfigServiceClient>;
  secrets: Promisified<SecretServiceClient>;
  audit: Promisified<AuditServiceClient>;
  workflows: Promisified<WorkflowServiceClient>;
  executions: Promisified<ExecutionServiceClient>;
  git: Promisified<GitBindingServiceClient>;
  /** WatchExecution, collected: every event until the stream ends (rejects on an error status). */
  watchExecution(request: WatchExecutionRequest): Promise<WatchExecutionResponse[]>;
}

/** Raw generated clients sharing one channel, closed together. */
export interface ClientPool {
  as(apiKey: string | undefined): ApiClients;
  close(): void;
}

/** Connects the generated clients to a control plane at address (host:port). */
export function connectClients(address: string): ClientPool {
  const creds = credentials.createInsecure();
  const raw = {
    organizations: new OrganizationServiceClient(address, creds),
    identity: new IdentityServiceClient(address, creds),
    modules: new ModuleServiceClient(address, creds),
    config: new ConfigServiceClient(address, creds),
    secrets: new SecretServiceClient(address, creds),
    audit: new AuditServiceClient(address, creds),
    workflows: new WorkflowServiceClient(address, creds),
    executions: new ExecutionServiceClient(address, creds),
    git: new GitBindingServiceClient(address, creds),
  };
  return {
    as: (apiKey) => ({
      organizations: promisify(raw.organizations, apiKey),
      identity: promisify(raw.identity, apiKey),
      modules: promisify(raw.modules, apiKey),
      config: promisify(raw.config, apiKey),
      secrets: promisify(raw.secrets, apiKey),
      audit: promisify(raw.audit, apiKey),
      workflows: promisify(raw.workflows, apiKey),
      executions: promisify(raw.executions, apiKey),
      git: promisify(raw.git, apiKey),
      watchExecution: (request) =>
        new Promise((resolve, reject) => {
          const metadata = new Metadata();
          if (apiKey !== undefined) metadata.set("authorization", `Bearer ${apiKey}`);
          const events: WatchExecutionResponse[] = [];
          const stream = raw.executions.watchExecution(request, metadata);
          stream.on("data", (event: WatchExecutionResponse) => events.push(event));
          stream.on("error", reject);
          stream.on("end", () => resolve(events));
        }),
    }),
    close: () => {
      for (const client of Object.values(raw)) client.close();
    },
  };
}
