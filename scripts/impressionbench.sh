#!/usr/bin/env bash
# What impressions cost a Recommend: the demo server on a Pebble state store
# without impressions (--store-impressions=false), with them stored (the
# default: attribution and experiment reports), and stored plus the JSON-lines
# log (--impression-log); ghz at concurrency 8 for 15 s each, interleaved
# (off, store, store+log, twice), with the server's CPU time per request from
# /proc. Env: REPO, DATA (the demo), ADDR, OUT, ROUTE (of the requests; empty:
# the default route; global, popularity alone, shows the cost at its largest).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/benchlib.sh
REPO=${REPO:-var/demo/repo}; DATA=${DATA:-var/demo/data}; ADDR=${ADDR:-127.0.0.1:50784}; OUT=${OUT:-var/impressionbench}
rm -rf "$OUT"; mkdir -p "$OUT"
go build -o bin/recserve ./cmd/recserve
go run ./scripts/ghzdata -kind recommend -data "$DATA" -users 1000 -k 10 -route "${ROUTE:-}" -out "$OUT/rec.bin"
pid=
trap 'kill $pid 2>/dev/null || true' EXIT
for round in 1 2; do
  for mode in off store store+log; do
    args=(--state "$OUT/state")
    case $mode in
      off) args+=(--store-impressions=false) ;;
      store+log) args+=(--impression-log "$OUT/impressions.jsonl") ;;
    esac
    bin/recserve --addr "$ADDR" --repo "$REPO" --data "$DATA" "${args[@]}" --log-level error & pid=$!
    wait_serving "$ADDR"
    .tools/ghz --insecure --call recserve.v1.RecommendService/Recommend -B "$OUT/rec.bin" -c 8 -z 3s "$ADDR" >/dev/null 2>&1 # warm-up
    c0=$(proc_cpu $pid)
    .tools/ghz --insecure --call recserve.v1.RecommendService/Recommend -B "$OUT/rec.bin" -c 8 -z 15s -O json "$ADDR" > "$OUT/$mode-$round.json"
    c1=$(proc_cpu $pid)
    n=$(ghz_count "$OUT/$mode-$round.json")
    echo "impressions $mode (round $round): $(go run ./scripts/ghzsummary "$OUT/$mode-$round.json")  server CPU/request $(per_request $c0 $c1 $n) µs"
    kill $pid; wait $pid 2>/dev/null || true
  done
done
echo "impression lines written: $(cat "$OUT"/impressions*.jsonl | wc -l)"
