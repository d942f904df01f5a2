#!/usr/bin/env bash
# Makes sure the local services Bifrost needs are running on loopback: PostgreSQL (5432),
# Redis (6379) and NATS with JetStream (4222). Starts any that are down; installs a missing
# one from Debian's packages when running as root. Idempotent: safe to run any time.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do
    if port_open "$port"; then return 0; fi
    sleep 0.5
  done
  log "$name did not come up on 127.0.0.1:$port"
  return 1
}

apt_updated=0
ensure_package() {
  local command=$1 package=$2
  if command -v "$command" >/dev/null 2>&1 || [ -x "$command" ]; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    log "$package is not installed and this is not root: install it with apt-get install $package"
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  log "installing $package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}

# PostgreSQL 15+ (NULLS NOT DISTINCT needs 15).
if ! port_open 5432; then
  ensure_package pg_ctlcluster postgresql
  version=$(ls /etc/postgresql | sort -V | tail -1)
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port PostgreSQL 5432
fi

if ! port_open 6379; then
  ensure_package redis-server redis-server
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port Redis 6379
fi

if ! port_open 4222; then
  ensure_package nats-server nats-server
  log "starting NATS with JetStream"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port NATS 4222
fi

log "PostgreSQL, Redis and NATS are up"
