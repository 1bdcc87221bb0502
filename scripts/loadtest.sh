#!/usr/bin/env bash
# Load test: Recommend next to grpc.health.v1.Health/Check on the same server,
# in the same run, with ghz. Prints both summaries and the throughput ratio.
#
# Env: ADDR (default 127.0.0.1:50777), REPO, DATA (demo defaults),
#      CONCURRENCY (50), DURATION (10s), USERS (5000, ids u0001..).
set -euo pipefail
cd "$(dirname "$0")/.."
ADDR=${ADDR:-127.0.0.1:50777}
REPO=${REPO:-var/demo/repo}
DATA=${DATA:-var/demo/data}
CONCURRENCY=${CONCURRENCY:-50}
DURATION=${DURATION:-10s}
GHZ=${GHZ:-.tools/ghz}
OUT=${OUT:-var/loadtest}
mkdir -p "$OUT"

bin/recserve --addr "$ADDR" --repo "$REPO" --data "$DATA" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT

# Wait for SERVING (the server loads its models after it starts listening).
for _ in $(seq 1 200); do
  if bin/recctl models --addr "$ADDR" --timeout 200ms >/dev/null 2>&1 &&
     "$GHZ" --insecure --call grpc.health.v1.Health/Check -n 1 -c 1 -d '{}' "$ADDR" 2>/dev/null | grep -q 'OK'; then
    break
  fi
  sleep 0.1
done

# A user id is drawn per request among the data set's users, so the server
# answers real histories, not a single cached one.
users=$(head -1 <(cut -d, -f1 "$DATA/interactions.csv" | tail -n +2 | sort -u | head -1000 | paste -sd, -))
requests_json() {
  # A JSON array of requests, one per user, that ghz cycles through.
  local IFS=,
  local first=1
  printf '['
  for u in $users; do
    if [ $first = 1 ]; then first=0; else printf ','; fi
    printf '{"user_id":"%s","k":10}' "$u"
  done
  printf ']'
}
requests_json > "$OUT/recommend-data.json"

run() { # name call data-file
  "$GHZ" --insecure --call "$2" --data-file "$3" -c "$CONCURRENCY" -z "$DURATION" \
    --connections 4 -O json "$ADDR" > "$OUT/$1.json"
}
echo '{}' > "$OUT/health-data.json"
run health grpc.health.v1.Health/Check "$OUT/health-data.json"
run recommend recserve.v1.RecommendService/Recommend "$OUT/recommend-data.json"

summary() { # name
  go run ./scripts/ghzsummary "$OUT/$1.json"
}
echo "concurrency $CONCURRENCY, duration $DURATION, addr $ADDR"
printf '%-10s %s\n' "health" "$(summary health)"
printf '%-10s %s\n' "recommend" "$(summary recommend)"
go run ./scripts/ghzsummary -ratio "$OUT/recommend.json" "$OUT/health.json"
