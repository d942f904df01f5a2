#!/usr/bin/env bash
# `npm test`: every check, in order of cost — lint and format, the proto contract (buf lint,
# buf format, generated code matches the .proto files), type-check, then every unit and
# integration test against the real services.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "biome (lint + format)"
npx biome check .

step "buf lint + format"
npm run --silent lint -w @bifrost/proto

step "generated code is up to date"
snapshot() { find proto/src -type f -print0 | sort -z | xargs -0 sha256sum; }
before=$(snapshot)
npm run --silent generate >/dev/null
after=$(snapshot)
if [ "$before" != "$after" ]; then
  diff <(echo "$before") <(echo "$after") || true
  echo "generated code was stale: 'npm run generate' changed the files above; commit them" >&2
  exit 1
fi

step "type-check"
npx tsc -b

step "tests (unit + integration)"
report=$(mktemp -d)/vitest.json
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?
# A plain closing line for tools that read "N passed, N failed".
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' "$report" || true
exit "$status"
