#!/usr/bin/env bash
# A real TimescaleDB for development and tests, without Docker.
#
#   scripts/timescaledb-dev.sh start   # build (first time ~60 s, ~630 MB) and start on 127.0.0.1:5433
#   scripts/timescaledb-dev.sh url     # print the admin URL (use as VITALGATE_TEST_TIMESCALE_URL)
#   scripts/timescaledb-dev.sh status  # running or not
#   scripts/timescaledb-dev.sh stop    # stop the server and unmount
#
# Debian 12 has no TimescaleDB package; Debian 13 ("trixie") packages
# postgresql-17-timescaledb (the Apache-licensed build: hypertables and
# time_bucket work; compression, continuous aggregates and policies do not).
# We debootstrap a minimal trixie root once, cached outside the repository
# under /var/cache/vitalgate (override with VITALGATE_TSDB_CACHE), and run
# PostgreSQL 17 inside it with chroot --userspec.  Needs root.
set -euo pipefail

CACHE=${VITALGATE_TSDB_CACHE:-/var/cache/vitalgate/timescaledb}
ROOT="$CACHE/root"
PORT=${VITALGATE_TSDB_PORT:-5433}
DATA=/var/lib/vitalgate-tsdb
PGBIN=/usr/lib/postgresql/17/bin

mirror() {
  # The Debian mirror apt already uses on this machine.
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

url() { echo "postgresql://postgres@127.0.0.1:$PORT/postgres"; }

running() { [ -f "$ROOT$DATA/postmaster.pid" ] && chroot --userspec=postgres:postgres "$ROOT" "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

build() {
  [ -f "$ROOT/.vitalgate-complete" ] && return 0
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  mkdir -p "$CACHE"
  rm -rf "$ROOT"
  echo "timescaledb-dev: building a Debian trixie root in $ROOT (first time only)..." >&2
  debootstrap --variant=minbase --include=postgresql-17,postgresql-17-timescaledb \
    trixie "$ROOT" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 || {
      echo "timescaledb-dev: debootstrap failed, see $CACHE/debootstrap.log" >&2; exit 1; }
  touch "$ROOT/.vitalgate-complete"
}

mounts() {
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  mkdir -p "$ROOT/dev/shm"
  mountpoint -q "$ROOT/dev/shm" || mount -t tmpfs -o size=1g,mode=1777 tmpfs "$ROOT/dev/shm"
}

start() {
  if running; then url; return 0; fi
  build
  mounts
  if [ ! -f "$ROOT$DATA/PG_VERSION" ]; then
    mkdir -p "$ROOT$DATA"
    chroot "$ROOT" chown postgres:postgres "$DATA"
    chroot --userspec=postgres:postgres "$ROOT" "$PGBIN/initdb" -D "$DATA" -U postgres \
      --auth=trust -E UTF8 >/dev/null
    cat >>"$ROOT$DATA/postgresql.conf" <<CONF
shared_preload_libraries = 'timescaledb'
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '/tmp'
timescaledb.telemetry_level = off
fsync = on
CONF
  fi
  chroot --userspec=postgres:postgres "$ROOT" "$PGBIN/pg_ctl" -D "$DATA" \
    -l "$DATA/server.log" -w -t 60 start >/dev/null
  url
}

stop() {
  if running; then
    chroot --userspec=postgres:postgres "$ROOT" "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  fi
  mountpoint -q "$ROOT/dev/shm" && umount "$ROOT/dev/shm" || true
  mountpoint -q "$ROOT/proc" && umount "$ROOT/proc" || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  status) if running; then echo "running $(url)"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|url|status" >&2; exit 2 ;;
esac
