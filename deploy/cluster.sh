#!/usr/bin/env bash
# Try Lobby as a cluster on one machine: a throwaway PostgreSQL, N nodes
# (default 3) and nginx in front of them. Ctrl-C stops everything.
#
#   deploy/cluster.sh [N]
#
# Then open http://127.0.0.1:8080 (LOBBY_PORT changes it). Every node's log
# and nginx's are in the work directory printed at start. Kill a node
# (`kill -9 PID`) and watch its users' tabs reconnect to the others.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-3}
port=${LOBBY_PORT:-8080}
pg_port=${LOBBY_PG_PORT:-55432}
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx" ] || { echo "cluster.sh: nginx is not installed (apt-get install nginx)" >&2; exit 1; }

work=$(mktemp -d /tmp/lobby-cluster.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  deploy/postgres.sh stop "$work/pg"
  echo "stopped; logs are in $work"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "building the release binary…"
cargo build --release --quiet
database=$(deploy/postgres.sh start "$work/pg" "$pg_port")
echo "PostgreSQL: $database"

servers=""
for i in $(seq 1 "$n"); do
  node_port=$((3000 + i))
  DATABASE_URL=$database STORAGE_URL=file://$work/uploads LISTEN_ADDR=127.0.0.1:$node_port PUBLIC_URL=http://127.0.0.1:$port \
    TRUSTED_PROXIES=127.0.0.1 RUST_LOG=${RUST_LOG:-lobby=info} \
    target/release/lobby >"$work/node$i.log" 2>&1 &
  pids+=($!)
  servers+="server 127.0.0.1:$node_port max_fails=1 fail_timeout=5s; "
  echo "node $i: http://127.0.0.1:$node_port (pid ${pids[-1]}, log $work/node$i.log)"
done
for i in $(seq 1 "$n"); do
  until curl -fs "http://127.0.0.1:$((3000 + i))/healthz" >/dev/null 2>&1; do sleep 0.2; done
done

mkdir -p "$work/tmp"
sed -e "s|@PREFIX@|$work|g" -e "s|@PORT@|$port|g" -e "s|@SERVERS@|$servers|" deploy/nginx.conf >"$work/nginx.conf"
"$nginx" -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
echo "nginx: http://127.0.0.1:$port (config $work/nginx.conf)"
echo "Ctrl-C stops everything."
wait
