import { type ChannelCredentials, loadPackageDefinition } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath } from "grpc-health-check";

interface HealthClient {
  check(
    request: { service: string },
    callback: (error: Error | null, response: { status: string }) => void,
  ): void;
  close(): void;
}

/** Calls grpc.health.v1.Health/Check on a server and returns its status name. */
export async function checkHealth(
  address: string,
  creds: ChannelCredentials,
  service = "",
): Promise<string> {
  const definition = loadPackageDefinition(loadSync(protoPath, { enums: String })) as unknown as {
    grpc: {
      health: { v1: { Health: new (address: string, creds: ChannelCredentials) => HealthClient } };
    };
  };
  const client = new definition.grpc.health.v1.Health(address, creds);
  try {
    return await new Promise((resolve, reject) =>
      client.check({ service }, (error, response) =>
        error ? reject(error) : resolve(response.status),
      ),
    );
  } finally {
    client.close();
  }
}
