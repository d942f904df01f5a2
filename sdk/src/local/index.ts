/**
 * `@bifrost/sdk/host`: the Node side of the execution contract, for the runner and tools
 * that spawn workflow code: the generated entry.js, the channel server, the Deno executable,
 * and a sandbox-less Deno run with the contract's flags (trusted code only: no OS sandbox).
 */

export type { DiscoveryReport } from "../discover.js";
export type * from "../meta.js";
export type * from "../protocol.js";
export { maxMessageBytes, refusedExitCode } from "../protocol.js";
export {
  type ChannelServer,
  type ChannelServerOptions,
  createChannelServer,
  type StartInfo,
} from "./channel-server.js";
export { deniedIPv4Ranges, deniedIPv6Literals } from "./denied-networks.js";
export { resolveDenoBinary } from "./deno-binary.js";
export {
  discoverEntrySource,
  type EntryModule,
  runEntrySource,
  workspaceUrl,
} from "./entry-source.js";
export { builtSdkEntry } from "./local-run.js";
export { type DenoRunOptions, type DenoRunResult, deniedNetworks, runDeno } from "./run-deno.js";
