#!/usr/bin/env bash
# `npm start`: brings the platform up on this machine — the local services, then the control
# plane (which applies migrations and, on first start, prints a platform admin API key).
# Configuration comes from the environment (see README); for local use a secret-encryption
# key is generated once into .bifrost/dev.env when BIFROST_SECRET_KEYS is not set.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh
bash scripts/system-packages.sh

if [ -z "${BIFROST_SECRET_KEYS:-}" ]; then
  mkdir -p .bifrost
  if [ ! -f .bifrost/dev.env ]; then
    umask 077
    echo "BIFROST_SECRET_KEYS=dev:$(head -c 32 /dev/urandom | base64)" > .bifrost/dev.env
    echo "start: generated a local secret-encryption key in .bifrost/dev.env (keep it: secrets need it)" >&2
  fi
  set -a
  # shellcheck disable=SC1091
  . .bifrost/dev.env
  set +a
fi

if [ ! -d node_modules ]; then npm ci; fi

exec node --conditions=development --import tsx control-plane/src/main.ts
