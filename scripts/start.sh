#!/usr/bin/env bash
# `npm start`: brings the platform up on this machine — the local services, the control plane
# (which applies migrations and, on first start, prints a platform admin API key) and one
# runner. Configuration comes from the environment (see README); for local use, keys that
# must exist (secret encryption, the runner's API key) are generated once into
# .bifrost/dev.env when not set.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh
bash scripts/system-packages.sh
# Install when there is nothing installed, or when the lock file or a dependency patch
# (patches/, applied by npm ci's postinstall) is newer than the last install.
installed=node_modules/.package-lock.json
if [ ! -f "$installed" ] || [ package-lock.json -nt "$installed" ] ||
  [ -n "$(find patches -type f -newer "$installed" 2>/dev/null)" ]; then
  npm ci
fi
npx tsc -b   # builds the SDK the sandbox mounts

# .bifrost holds the sandbox work dirs, which the sandbox's uid must be able to traverse;
# only the key file itself is private.
mkdir -p .bifrost && chmod 711 .bifrost
if [ ! -f .bifrost/dev.env ]; then
  (
    umask 077
    node -e '
      const { randomBytes } = require("node:crypto");
      const key = `bfk_${randomBytes(8).toString("hex")}_${randomBytes(32).toString("base64url")}`;
      console.log(`BIFROST_SECRET_KEYS=dev:${randomBytes(32).toString("base64")}`);
      console.log(`BIFROST_RUNNER_KEY=${key}`);
      console.log(`BIFROST_BOOTSTRAP_RUNNER_KEY=${key}`);
    ' > .bifrost/dev.env
  )
  echo "start: generated local keys in .bifrost/dev.env (keep it: secrets need it)" >&2
fi
set -a
# shellcheck disable=SC1091
. .bifrost/dev.env
set +a

listen=${BIFROST_GRPC_LISTEN:-127.0.0.1:50051}
export BIFROST_CONTROL_PLANE=${BIFROST_CONTROL_PLANE:-127.0.0.1:${listen##*:}}

node --conditions=development --import tsx control-plane/src/main.ts &
control_plane=$!
trap 'kill -TERM $control_plane ${runner:-} 2>/dev/null; wait' EXIT INT TERM

# The runner needs the control plane listening (and its runner key installed).
for _ in $(seq 1 120); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${listen##*:}") 2>/dev/null; then break; fi
  if ! kill -0 $control_plane 2>/dev/null; then echo "start: the control plane exited" >&2; exit 1; fi
  sleep 0.5
done
node --conditions=development --import tsx runner/src/main.ts &
runner=$!
wait -n $control_plane $runner
