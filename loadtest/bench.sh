#!/usr/bin/env bash
# Runs every lobby-load scenario and appends one JSON line per run to
# target/bench/results.jsonl (summaries go to the terminal; CARGO_TARGET_DIR
# is respected).
#
#   loadtest/bench.sh           full sizes, 3 runs each, release build (about 25 minutes)
#   loadtest/bench.sh --smoke   a few hundred connections, a few seconds, once each (CI)
#
# Any run that finds a wrong count or a lost message fails the script.
# Scenarios with --nodes run on a throwaway PostgreSQL (deploy/postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-full}
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/bench"
out=$target/bench/results.jsonl

if [ "$mode" = "--smoke" ]; then
  cargo build --quiet -p lobby -p lobby-load
  tool=("$target/debug/lobby-load" --server-bin "$target/debug/lobby")
  runs=1
  scenarios=(
    "idle 300"
    "storm 300"
    "fanout 200 20 3"
    "churn 300 3"
    "logins 10 100 10 4"
    "http 2 8"
    "--users 100 typing 100 10 4"
    "scrollback 2 4 --messages 500"
    "--nodes 2 storm 300"
    "--nodes 2 failover 200"
  )
  # A killed node is counted out after NODE_TTL: keep the smoke short.
  export LOBBY_SERVER_NODE_TTL=2s
else
  cargo build --quiet --release -p lobby -p lobby-load
  tool=("$target/release/lobby-load" --server-bin "$target/release/lobby")
  runs=3
  scenarios=(
    "--procs 2 idle 19000"
    "storm 10000"
    "fanout 10000 10 10"
    "fanout 1000 200 8"
    "churn 5000 10"
    "logins 100 1000 10 12"
    "http 5 32"
    "--users 1000 typing 1000 10 20"
    "scrollback 5 16"
    "--nodes 1 fanout 1000 200 8"
    "--nodes 2 fanout 1000 200 8"
    "--nodes 2 --senders 100 --users 150 fanout 10 5000 10"
    "--nodes 3 storm 5000"
    "--nodes 3 failover 3000"
  )
fi

for scenario in "${scenarios[@]}"; do
  for run in $(seq 1 "$runs"); do
    echo "== $scenario (run $run of $runs)" >&2
    # shellcheck disable=SC2086
    "${tool[@]}" $scenario | tee -a "$out"
  done
done
echo "results appended to $out" >&2
