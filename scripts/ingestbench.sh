#!/usr/bin/env bash
# Live events under load, in one run on one server (the demo repository and
# data set, a fresh state store):
#   1. start: seeding the store from the data set, then a restart reading it;
#   2. ingest at full speed: `recctl replay` through TrackStream, events/s and
#      the server's CPU time per event from /proc;
#   3. Recommend latency at a fixed rate (ghz -r), idle, then while replay
#      ingests at half the measured rate, then beside a plain CPU burner (the
#      control), side by side;
#   4. a restart on everything ingested: start time and the live heap (after a
#      forced GC, from /debug/pprof and /metrics) per million events.
# Env: REPO, DATA (the demo), ADDR, OUT, HALF (the ingest rate during the
# Recommend run; default half the measured one), STORE (a redis:// URL instead of a
# Pebble directory), EVENTS (events of the full-speed ingest), QPS (ghz rate),
# ROUTE (of the Recommend requests; empty: the default route).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/benchlib.sh
REPO=${REPO:-var/demo/repo}; DATA=${DATA:-var/demo/data}; ADDR=${ADDR:-127.0.0.1:50782}
OUT=${OUT:-var/ingestbench}; EVENTS=${EVENTS:-1000000}; QPS=${QPS:-200}; DEBUG=${DEBUG:-127.0.0.1:50783}
rm -rf "$OUT"; mkdir -p "$OUT"
if [ -n "${STORE:-}" ]; then state=(--store "$STORE"); else state=(--state "$OUT/state"); fi
go build -o bin/recserve ./cmd/recserve
go build -o bin/recctl ./cmd/recctl
go run ./scripts/ghzdata -kind recommend -data "$DATA" -users 1000 -k 10 -route "${ROUTE:-}" -out "$OUT/rec.bin"
tck=$(getconf CLK_TCK)
pid=
start_server() {
  local t0; t0=$(date +%s.%N)
  bin/recserve --addr "$ADDR" --repo "$REPO" --data "$DATA" "${state[@]}" --debug-addr "$DEBUG" --log-level error & pid=$!
  wait_serving "$ADDR"
  echo "$1: SERVING after $(python3 -c "print(round($(date +%s.%N)-$t0, 1))") s, RSS $(awk '/VmRSS/{print int($2/1024)}' /proc/$pid/status) MB, $(heap)"
}
# heap forces a GC (the heap profile's gc=1) and reads the live heap.
heap() {
  curl -s -o /dev/null "http://$DEBUG/debug/pprof/heap?gc=1"
  echo "live heap $(curl -s "http://$DEBUG/metrics" | awk '/^go_memstats_heap_alloc_bytes /{print int($2/1048576)}') MB"
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
trap 'kill $pid 2>/dev/null || true' EXIT
cpu() { proc_cpu $pid; }
ghz_rec() { # name, extra ghz args
  .tools/ghz --insecure --call recserve.v1.RecommendService/Recommend -B "$OUT/rec.bin" -c 8 -r "$QPS" -z 15s -O json "$ADDR" > "$OUT/$1.json"
  echo "Recommend $1: $(go run ./scripts/ghzsummary "$OUT/$1.json")"
}

start_server "first start (seeds the store)"
stop_server
start_server "restart (reads the store)"

c0=$(cpu)
/usr/bin/time -f "replay client CPU %U s user %S s system" bin/recctl replay --addr "$ADDR" --data "$DATA" --events "$EVENTS" --streams 2 --id-prefix full- 2>&1 | tee "$OUT/ingest.txt"
c1=$(cpu)
rate=$(awk '/^replayed/{print int($6)}' "$OUT/ingest.txt")
echo "server CPU per event: $(python3 -c "print(round(($c1-$c0)/$tck/$EVENTS*1e6, 2))") µs"
echo "after ingesting $EVENTS events: RSS $(awk '/VmRSS/{print int($2/1024)}' /proc/$pid/status) MB, $(heap)"

.tools/ghz --insecure --call recserve.v1.RecommendService/Recommend -B "$OUT/rec.bin" -c 8 -z 3s "$ADDR" >/dev/null 2>&1 # warm-up
c0=$(cpu)
ghz_rec idle
c1=$(cpu)
echo "server CPU during that Recommend run: $(python3 -c "print(round(($c1-$c0)/$tck/15, 2))") cores"
half=${HALF:-$((rate / 2))}
/usr/bin/time -f "replay client CPU %U s user %S s system" bin/recctl replay --addr "$ADDR" --data "$DATA" --events $((half * 25)) --rate "$half" --streams 2 --id-prefix half- > "$OUT/half.txt" 2>&1 &
rp=$!
sleep 2
c0=$(cpu)
ghz_rec "ingesting-$half-events-per-s"
c1=$(cpu)
wait $rp
echo "server CPU during that Recommend run: $(python3 -c "print(round(($c1-$c0)/$tck/15, 2))") cores"
cat "$OUT/half.txt"
# Control: no ingest, but three processes that burn 15 ms of CPU in every 50
# (0.9 of the two cores, about what the server's ingest and the load
# generator took above): how much of the change is CPU sharing alone.
burners=()
for _ in 1 2 3; do python3 -c '
import time
end = time.time() + 18
while time.time() < end:
    t = time.time()
    while time.time() - t < 0.015: pass
    time.sleep(0.035)' & burners+=($!); done
sleep 1
ghz_rec "cpu-burner-0.9-cores"
wait "${burners[@]}"
stop_server
start_server "restart after ingest (reads $((EVENTS + half * 25)) more events)"
stop_server
