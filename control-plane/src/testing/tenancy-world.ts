import type { Organization } from "@bifrost/proto";
import { MembershipRole } from "@bifrost/proto";
import type { ApiClients } from "./grpc-clients.js";
import type { TestControlPlane } from "./harness.js";

/** Two organizations, their people and keys, as most tenancy tests need them. */
export interface TenancyWorld {
  orgA: Organization;
  orgB: Organization;
  /** A third organization with no overrides of its own. */
  orgC: Organization;
  keys: {
    platformAdmin: string;
    adminA: string;
    memberA: string;
    adminB: string;
    /** A key of org A's admin user that has been revoked. */
    revoked: string;
  };
  users: { adminA: string; memberA: string; adminB: string };
  as(key: string | undefined): ApiClients;
}

/** Creates orgs A, B and C, an admin and a member in A, an admin in B, and their API keys. */
export async function createTenancyWorld(cp: TestControlPlane): Promise<TenancyWorld> {
  const root = cp.api(cp.adminKey);
  const org = async (name: string) =>
    (await root.organizations.createOrganization({ name })).organization as Organization;
  const [orgA, orgB, orgC] = [await org("Org A"), await org("Org B"), await org("Org C")];
  const user = async (email: string, organizationId: string, role: MembershipRole) => {
    const { user } = await root.identity.createUser({
      email,
      displayName: email,
      platformAdmin: false,
      organizationId,
      role,
    });
    const id = user?.id as string;
    const { secret } = await root.identity.createApiKey({
      userId: id,
      name: "test",
      expiresAt: undefined,
    });
    return { id, key: secret };
  };
  const adminA = await user("admin@a.test", orgA.id, MembershipRole.MEMBERSHIP_ROLE_ADMIN);
  const memberA = await user("member@a.test", orgA.id, MembershipRole.MEMBERSHIP_ROLE_MEMBER);
  const adminB = await user("admin@b.test", orgB.id, MembershipRole.MEMBERSHIP_ROLE_ADMIN);
  const revokedKey = await root.identity.createApiKey({
    userId: adminA.id,
    name: "to revoke",
    expiresAt: undefined,
  });
  await root.identity.revokeApiKey({ id: revokedKey.apiKey?.id as string });
  return {
    orgA,
    orgB,
    orgC,
    keys: {
      platformAdmin: cp.adminKey,
      adminA: adminA.key,
      memberA: memberA.key,
      adminB: adminB.key,
      revoked: revokedKey.secret,
    },
    users: { adminA: adminA.id, memberA: memberA.id, adminB: adminB.id },
    as: (key) => cp.api(key),
  };
}
