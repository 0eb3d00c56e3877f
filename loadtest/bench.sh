#!/usr/bin/env bash
# Runs every lobby-load scenario and appends one JSON line per run to
# target/bench/results.jsonl (summaries go to the terminal; CARGO_TARGET_DIR
# is respected).
#
#   loadtest/bench.sh           full sizes, 3 runs each, release build (about 50 minutes)
#   loadtest/bench.sh --smoke   a few hundred connections, a few seconds, once each (CI)
#   loadtest/bench.sh --compare BEFORE_BIN
#                               the memory and CPU scenarios against two servers in one
#                               run: BEFORE_BIN (say, main built in another worktree) and
#                               this tree's release build, alternating, 3 runs each; prints
#                               the medians and the ratio after/before (needs python3)
#
# Any run that finds a wrong count or a lost message fails the script.
# Scenarios with --nodes run on a throwaway PostgreSQL (deploy/postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-full}
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/bench"
out=$target/bench/results.jsonl

if [ "$mode" = "--compare" ]; then
  before=${2:?--compare needs the server binary to compare against}
  cargo build --quiet --release -p lobby -p lobby-load
  out=$target/bench/compare.jsonl
  : > "$out"
  scenarios=(
    "--source-addrs 4 --procs 2 idle 19000"
    "--source-addrs 4 --procs 2 idle 19000 --history 50 --burst 200"
    "fanout 5000 10 10"
    "fanout 10000 10 10"
  )
  for scenario in "${scenarios[@]}"; do
    for run in 1 2 3; do
      for side in before after; do
        bin=$target/release/lobby
        [ "$side" = before ] && bin=$before
        echo "== $scenario ($side, run $run of 3)" >&2
        # shellcheck disable=SC2086
        "$target/release/lobby-load" --server-bin "$bin" $scenario |
          python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["side"]=sys.argv[1]; r["label"]=sys.argv[2]; print(json.dumps(r))' "$side" "$scenario" |
          tee -a "$out"
      done
      # Let the previous run's connections leave TIME_WAIT before the next.
      sleep 5
    done
  done
  python3 - "$out" <<'SUMMARY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
keys = ["kib_per_conn", "kib_per_conn_after_burst", "cpu_us_per_delivery", "server_cpu_secs", "p50_ms", "p99_ms", "lost"]
for label in dict.fromkeys(r["label"] for r in rows):
    print(f"\n{label}")
    for key in keys:
        sides = {side: [r[key] for r in rows if r["label"] == label and r["side"] == side and key in r] for side in ("before", "after")}
        if not sides["before"] or not sides["after"]:
            continue
        b, a = statistics.median(sides["before"]), statistics.median(sides["after"])
        ratio = f"{a / b:.2f}x" if b else "-"
        print(f"  {key:26} before {b:10.2f}  after {a:10.2f}  after/before {ratio}   (runs: {sides['before']} / {sides['after']})")
SUMMARY
  exit 0
fi

if [ "$mode" = "--smoke" ]; then
  cargo build --quiet -p lobby -p lobby-load
  tool=("$target/debug/lobby-load" --server-bin "$target/debug/lobby")
  runs=1
  scenarios=(
    "idle 300 --history 50 --burst 20"
    "storm 300"
    "fanout 200 20 3"
    "churn 300 3"
    "logins 10 100 10 4"
    "http 2 8"
    "--users 100 typing 100 10 4"
    "scrollback 2 4 --messages 500"
    "--nodes 2 storm 300"
    "--nodes 2 failover 200"
    "rooms 200 10 50 3"
    "greeting 30 10"
    "idle 200 --rooms 10"
    "search 20000 100 --queries 20 --commits 40"
    "--nodes 1 search 20000 100 --queries 20 --commits 40"
    "uploads 4 1MiB"
  )
  # A killed node is counted out after NODE_TTL: keep the smoke short.
  export LOBBY_SERVER_NODE_TTL=2s
else
  cargo build --quiet --release -p lobby -p lobby-load
  tool=("$target/release/lobby-load" --server-bin "$target/release/lobby")
  runs=3
  scenarios=(
    "--source-addrs 4 --procs 2 idle 19000"
    "--source-addrs 4 --procs 2 idle 19000 --history 50 --burst 200"
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
    "--source-addrs 4 rooms 10000 10 200 10"
    "greeting 500 50"
    "greeting 0 50"
    "--source-addrs 4 --procs 2 idle 19000 --rooms 10"
    "search 1000000 1000"
    "--nodes 1 search 1000000 1000"
    "uploads 20 10MiB"
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
