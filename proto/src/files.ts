import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The directory holding bifrost/v1/*.proto (the import root of the contract). */
export const protoRoot = fileURLToPath(new URL("../", import.meta.url));

/** The contract's .proto files, relative to protoRoot. */
export const protoFiles: readonly string[] = readdirSync(new URL("../bifrost/v1/", import.meta.url))
  .filter((name) => name.endsWith(".proto"))
  .sort()
  .map((name) => `bifrost/v1/${name}`);

/**
 * The compiled contract and the standard health service, each a google.protobuf.FileDescriptorSet
 * (`buf build` output: one descriptor per .proto file with its imports listed), for server
 * reflection.
 */
export function readFileDescriptorSets(): Buffer[] {
  return ["bifrost.binpb", "health.binpb"].map((name) =>
    readFileSync(new URL(`../src/gen/${name}`, import.meta.url)),
  );
}
