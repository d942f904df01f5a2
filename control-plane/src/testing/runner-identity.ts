import type { ApiClients } from "./grpc-clients.js";

/**
 * Creates a runner identity (as `root`, a platform admin) and an API key for it; returns the
 * key's secret, what a runner authenticates with.
 */
export async function createRunnerKey(root: ApiClients, name: string): Promise<string> {
  const { user } = await root.identity.createUser({
    email: `${name}@runners.test`,
    displayName: name,
    platformAdmin: false,
    organizationId: "",
    role: 0,
    runner: true,
  });
  const { secret } = await root.identity.createApiKey({
    userId: user?.id as string,
    name: "runner",
    expiresAt: undefined,
  });
  return secret;
}
