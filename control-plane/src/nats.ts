import { connect, type NatsConnection } from "@nats-io/transport-node";

/**
 * Connects to NATS, failing at start with the URL named when it cannot be reached rather
 * than retrying in silence; once connected, the client reconnects on its own.
 */
export async function connectNats(url: string): Promise<NatsConnection> {
  try {
    return await connect({
      servers: url,
      timeout: 5000,
      maxReconnectAttempts: -1,
      name: "bifrost-control-plane",
    });
  } catch (error) {
    throw new Error(`cannot reach NATS at ${url}: ${(error as Error).message}`, { cause: error });
  }
}
