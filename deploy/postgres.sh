#!/usr/bin/env bash
# A throwaway PostgreSQL cluster in a directory of its own, for tests, CI and
# trying a cluster on one machine. Nothing is installed or left behind.
#
#   deploy/postgres.sh start DIR PORT   initdb (if DIR is new) and start; prints the URL
#   deploy/postgres.sh stop DIR         stop it (fast); the data stays in DIR
#   deploy/postgres.sh crash DIR        restart it as after a crash (-m immediate: no
#                                       checkpoint, clients cut off, crash recovery)
#
# initdb refuses to run as root, so as root the cluster belongs to the
# `postgres` user (created by Debian's postgresql package).
set -euo pipefail

bindir() {
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
  else
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
  fi
}
BIN=$(bindir)
[ -x "$BIN/initdb" ] || { echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:?usage: postgres.sh start DIR PORT | stop DIR | crash DIR}
dir=${2:?a directory}
case "$cmd" in
  start)
    port=${3:?a port}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "$BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    # Settings a chat server wants (see docs/operations.md): statements and
    # idle transactions cannot hold locks forever; commits are durable.
    as_owner "$BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start -o \
      "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=300 -c fsync=${PG_FSYNC:-on} \
       -c synchronous_commit=on -c idle_in_transaction_session_timeout=60s -c lock_timeout=10s" >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  crash)
    as_owner "$BIN/pg_ctl" -D "$dir" -m immediate -w -t 60 restart >/dev/null
    ;;
  *)
    echo "usage: postgres.sh start DIR PORT | stop DIR | crash DIR" >&2
    exit 2
    ;;
esac
