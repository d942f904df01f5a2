/** A role inside one organization. */
export type MembershipRole = "admin" | "member";

/** Who is calling, as established from their API key at the start of each request. */
export interface Principal {
  userId: string;
  apiKeyId: string;
  email: string;
  platformAdmin: boolean;
  /** A runner identity: may call RunnerService, nothing else. */
  runner: boolean;
  /** The caller's organizations: role and whether the organization is active. */
  memberships: ReadonlyMap<string, { role: MembershipRole; active: boolean }>;
}
