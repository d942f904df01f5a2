#!/usr/bin/env node
// bifrost-local: run a workflow file locally (see sdk/README.md). Needs the built SDK:
// npm run build -w @bifrost/sdk.
import { existsSync } from "node:fs";

const cli = new URL("../dist-node/local/cli.js", import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("bifrost-local: the SDK is not built: run npm run build -w @bifrost/sdk\n");
  process.exit(2);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2), {
  cwd: process.cwd(),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
