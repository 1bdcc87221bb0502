#!/usr/bin/env bash
# Load test: Recommend next to grpc.health.v1.Health/Check on the same server,
# in the same run, with ghz at the same concurrency. Prints both summaries and
# the throughput ratio Recommend / Health.
#
# Requests are pre-encoded binary protobuf (scripts/ghzdata, ghz -B), one
# RecommendRequest per user of the data set, so ghz does not render a JSON
# template per call and the server answers real, varied histories.
#
# Env: ADDR (127.0.0.1:50777), REPO, DATA (the demo), CONCURRENCY (50),
#      DURATION (10s), USERS (1000), MODEL (popularity; empty = default route),
#      CONNECTIONS (1, ghz's default).
#
# Client and server share this machine's cores, so throughput is partly bound
# by ghz itself; the server's own CPU time per request (from /proc) is printed
# too, as the client-independent measure of what a call costs the server.
set -euo pipefail
cd "$(dirname "$0")/.."
ADDR=${ADDR:-127.0.0.1:50777}
REPO=${REPO:-var/demo/repo}
DATA=${DATA:-var/demo/data}
CONCURRENCY=${CONCURRENCY:-50}
DURATION=${DURATION:-10s}
USERS=${USERS:-1000}
MODEL=${MODEL-popularity}
CONNECTIONS=${CONNECTIONS:-1}
GHZ=${GHZ:-.tools/ghz}
OUT=${OUT:-var/loadtest}
mkdir -p "$OUT"

go run ./scripts/ghzdata -kind health -out "$OUT/health.bin"
go run ./scripts/ghzdata -kind recommend -data "$DATA" -users "$USERS" -k 10 -model "$MODEL" -out "$OUT/recommend.bin"

bin/recserve --addr "$ADDR" --repo "$REPO" --data "$DATA" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT

# Wait until the server reports SERVING (it loads its models after listening).
for _ in $(seq 1 300); do
  if "$GHZ" --insecure --call grpc.health.v1.Health/Check -B "$OUT/health.bin" -n 1 -c 1 "$ADDR" 2>/dev/null | grep -q '\[OK\]'; then
    break
  fi
  sleep 0.1
done

# cpu_ticks prints the server's user+system CPU time in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

run() { # name call data-file
  local before after
  before=$(cpu_ticks)
  /usr/bin/time -f '%U %S' -o "$OUT/$1.ghz_time" \
    "$GHZ" --insecure --call "$2" -B "$3" -c "$CONCURRENCY" -z "$DURATION" \
    --connections "$CONNECTIONS" -O json "$ADDR" > "$OUT/$1.json"
  after=$(cpu_ticks)
  echo $(( (after - before) * 1000000 / hz )) > "$OUT/$1.cpu_us"
}
# per_request_cpu NAME prints the server's and ghz's CPU microseconds per request.
per_request_cpu() {
  local n ghz_us
  n=$(grep -o '"count":[0-9]*' "$OUT/$1.json" | head -1 | cut -d: -f2)
  ghz_us=$(awk '{printf "%d", ($1 + $2) * 1000000}' "$OUT/$1.ghz_time")
  echo "cpu/request: server $(( $(cat "$OUT/$1.cpu_us") / n ))µs, ghz $(( ghz_us / n ))µs"
}
run health grpc.health.v1.Health/Check "$OUT/health.bin"
run recommend recserve.v1.RecommendService/Recommend "$OUT/recommend.bin"

echo "ghz: concurrency $CONCURRENCY, $CONNECTIONS connections, $DURATION each, model '${MODEL:-default route}', $USERS users"
printf '%-10s %s  %s\n' health "$(go run ./scripts/ghzsummary "$OUT/health.json")" "$(per_request_cpu health)"
printf '%-10s %s  %s\n' recommend "$(go run ./scripts/ghzsummary "$OUT/recommend.json")" "$(per_request_cpu recommend)"
go run ./scripts/ghzsummary -ratio "$OUT/recommend.json" "$OUT/health.json"
