#!/usr/bin/env bash
# What attribution costs ingest: `recctl replay` at full speed through
# TrackStream into a fresh store, with impressions off (--store-impressions=false:
# no attribution) and on (the default: every stored event's user's recent
# impressions are read and matched), interleaved, on Pebble and on Redis
# (a redis-server started here, appendonly yes, appendfsync always), in one
# run; events/s and the server's CPU time per event from /proc. The replayed
# users have no impressions, as most events' users at any moment: this is the
# cost of the lookup every event pays.
# Env: REPO, DATA (the demo), ADDR, OUT, EVENTS (per run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/benchlib.sh
REPO=${REPO:-var/demo/repo}; DATA=${DATA:-var/demo/data}; ADDR=${ADDR:-127.0.0.1:50786}
OUT=${OUT:-var/attributionbench}; EVENTS=${EVENTS:-300000}; RPORT=${RPORT:-6391}
rm -rf "$OUT"; mkdir -p "$OUT"
go build -o bin/recserve ./cmd/recserve
go build -o bin/recctl ./cmd/recctl
pid=; rpid=
trap 'kill $pid $rpid 2>/dev/null || true' EXIT
redis-server --port "$RPORT" --dir "$OUT" --appendonly yes --appendfsync always --save "" --daemonize no >/dev/null & rpid=$!
sleep 0.5
n=0
for round in 1 2; do
  for store in pebble redis; do
    for mode in off on; do
      n=$((n + 1))
      if [ $store = pebble ]; then state=(--state "$OUT/state-$n"); else
        redis-cli -p "$RPORT" -n "$n" flushdb >/dev/null; state=(--store "redis://127.0.0.1:$RPORT/$n"); fi
      args=(); [ $mode = off ] && args=(--store-impressions=false)
      bin/recserve --addr "$ADDR" --repo "$REPO" --data "$DATA" "${state[@]}" "${args[@]}" --log-level error & pid=$!
      wait_serving "$ADDR"
      c0=$(proc_cpu $pid)
      bin/recctl replay --addr "$ADDR" --data "$DATA" --events "$EVENTS" --streams 2 --id-prefix "r$n-" > "$OUT/$n.txt" 2>&1
      c1=$(proc_cpu $pid)
      rate=$(awk '/^replayed/{print int($6)}' "$OUT/$n.txt")
      echo "$store, attribution $mode (round $round): $rate events/s, server CPU/event $(per_request $c0 $c1 "$EVENTS") µs"
      kill $pid; wait $pid 2>/dev/null || true
    done
  done
done
