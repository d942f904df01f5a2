/** Where discovery of a module stands. */
export type DiscoveryStatus = "pending" | "ok" | "failed" | "skipped";

/** A module that is not code (JSON) declares nothing and is never loaded for discovery. */
export const initialDiscoveryStatus = (path: string): DiscoveryStatus =>
  path.endsWith(".json") ? "skipped" : "pending";
