import {
  AuditServiceService,
  ConfigServiceService,
  ExecutionServiceService,
  GitBindingServiceService,
  IdentityServiceService,
  ModuleServiceService,
  OrganizationServiceService,
  RunnerServiceService,
  readFileDescriptorSets,
  SecretServiceService,
  WorkflowServiceService,
} from "@bifrost/proto";
import {
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import type { MessageTypeDefinition, PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import descriptor from "protobufjs/ext/descriptor/index.js";
import type { Logger } from "../log.js";

/** The service implementations the server exposes, keyed by their proto service name. */
export interface ServiceImplementations {
  "bifrost.v1.OrganizationService": UntypedServiceImplementation;
  "bifrost.v1.IdentityService": UntypedServiceImplementation;
  "bifrost.v1.ModuleService": UntypedServiceImplementation;
  "bifrost.v1.ConfigService": UntypedServiceImplementation;
  "bifrost.v1.SecretService": UntypedServiceImplementation;
  "bifrost.v1.AuditService": UntypedServiceImplementation;
  "bifrost.v1.WorkflowService": UntypedServiceImplementation;
  "bifrost.v1.ExecutionService": UntypedServiceImplementation;
  "bifrost.v1.RunnerService": UntypedServiceImplementation;
  "bifrost.v1.GitBindingService": UntypedServiceImplementation;
}

const definitions: Record<keyof ServiceImplementations, ServiceDefinition> = {
  "bifrost.v1.OrganizationService": OrganizationServiceService,
  "bifrost.v1.IdentityService": IdentityServiceService,
  "bifrost.v1.ModuleService": ModuleServiceService,
  "bifrost.v1.ConfigService": ConfigServiceService,
  "bifrost.v1.SecretService": SecretServiceService,
  "bifrost.v1.AuditService": AuditServiceService,
  "bifrost.v1.WorkflowService": WorkflowServiceService,
  "bifrost.v1.ExecutionService": ExecutionServiceService,
  "bifrost.v1.RunnerService": RunnerServiceService,
  "bifrost.v1.GitBindingService": GitBindingServiceService,
};

/**
 * What server reflection serves: each .proto file of the contract as `buf build` compiled it
 * (proto-loader would merge a package into one file without its imports, which strict
 * clients such as buf curl reject), plus the standard health service.
 */
function reflectionDescriptors(): PackageDefinition {
  const { FileDescriptorSet, FileDescriptorProto } = descriptor as unknown as DescriptorModule;
  const files = readFileDescriptorSets().flatMap((bytes) =>
    FileDescriptorSet.decode(bytes).file.map((file) => FileDescriptorProto.encode(file).finish()),
  );
  // The reflection service reads only fileDescriptorProtos from each entry.
  const entry = {
    format: "Protocol Buffer 3 DescriptorProto",
    type: {},
    fileDescriptorProtos: files,
  };
  return { contract: entry as unknown as MessageTypeDefinition<object, object> };
}

interface DescriptorModule {
  FileDescriptorSet: { decode(bytes: Uint8Array): { file: unknown[] } };
  FileDescriptorProto: { encode(file: unknown): { finish(): Uint8Array } };
}

/** A running gRPC server. */
export interface GrpcServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** Marks every service NOT_SERVING, lets calls in flight finish for up to graceMs, then forces. */
  shutdown(graceMs: number): Promise<void>;
}

/**
 * Starts the gRPC server with the Bifrost services plus the standard health service
 * (grpc.health.v1, unauthenticated so load balancers can probe it) and server reflection
 * (so `buf curl` and grpcurl work without local .proto files).
 */
export async function startGrpcServer(
  services: ServiceImplementations,
  options: { listen: string; log: Logger },
): Promise<GrpcServer> {
  const server = new Server({
    "grpc.max_receive_message_length": 32 * 1024 * 1024,
    // Nothing serves channelz, so its per-call bookkeeping (counters and timestamps for every
    // call, socket and channel) would be kept for no one, on every RPC's path.
    "grpc.enable_channelz": 0,
  });
  const serviceNames = Object.keys(definitions) as Array<keyof ServiceImplementations>;
  for (const name of serviceNames) server.addService(definitions[name], services[name]);

  const health = new HealthImplementation(
    Object.fromEntries([["", "SERVING"], ...serviceNames.map((name) => [name, "SERVING"])]),
  );
  health.addToServer(server);

  new ReflectionService(reflectionDescriptors()).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(options.listen, ServerCredentials.createInsecure(), (error, boundPort) =>
      error
        ? reject(new Error(`cannot listen on ${options.listen}: ${error.message}`))
        : resolve(boundPort),
    );
  });
  options.log.info({ listen: options.listen, port }, "grpc server listening");

  return {
    port,
    async shutdown(graceMs) {
      health.setStatus("", "NOT_SERVING");
      for (const name of serviceNames) health.setStatus(name, "NOT_SERVING");
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
