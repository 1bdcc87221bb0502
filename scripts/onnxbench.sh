#!/usr/bin/env bash
# ONNX serving benchmark, in one run:
#   1. raw onnxruntime Run of the model at batch 1 (BenchmarkTrainedRun: one
#      tensor, one Run, no input building, no gRPC), p50;
#   2. the same model through the server (Recommend with "model", ghz, real
#      users' histories) at concurrency 1, 8, 32 and 64, with dynamic batching
#      off and on (copies of the version without and with
#      params.max_batch_size);
# and prints throughput, p50 and p99 per run, the batching speed-up at each
# concurrency, and the server's overhead at concurrency 1 (end-to-end p50
# minus raw Run p50; the end-to-end time includes ghz's own client work).
#
# Env: MODEL (rnn), REPO (var/demo/repo), DATA (var/demo/data), DURATION (8s),
#      MAX_BATCH (32), QUEUE_DELAY_US (2000), ADDR (127.0.0.1:50779), USERS (1000).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-rnn}
REPO=${REPO:-var/demo/repo}
DATA=${DATA:-var/demo/data}
DURATION=${DURATION:-8s}
MAX_BATCH=${MAX_BATCH:-32}
QUEUE_DELAY_US=${QUEUE_DELAY_US:-2000}
ADDR=${ADDR:-127.0.0.1:50779}
USERS=${USERS:-1000}
GHZ=${GHZ:-.tools/ghz}
OUT=${OUT:-var/onnxbench}
rm -rf "$OUT" && mkdir -p "$OUT/repo"

# A repository with the model twice (batching off / on) and a fallback.
cp -r "$REPO/$MODEL" "$OUT/repo/$MODEL"
cp -r "$REPO/$MODEL" "$OUT/repo/${MODEL}_batched"
cp -r "$REPO/popularity" "$OUT/repo/popularity"
# The trainers write batching params (neural.py); the plain copy has them
# removed (batching off), the batched copy gets this run's.
for v in "$OUT/repo/$MODEL"/*/model.yaml "$OUT/repo/${MODEL}_batched"/*/model.yaml; do
  sed -i '/^  max_batch_size:/d; /^  max_queue_delay_us:/d; /^  runners:/d' "$v"
done
for v in "$OUT/repo/${MODEL}_batched"/*/model.yaml; do
  sed -i "s/^params:\$/params:\n  max_batch_size: $MAX_BATCH\n  max_queue_delay_us: $QUEUE_DELAY_US\n  runners: 2/" "$v"
  grep -q "max_batch_size: $MAX_BATCH" "$v" || { echo "could not add batching params to $v" >&2; exit 1; }
done
printf 'default_route: main\nfallback: popularity\nroutes:\n  - name: main\n    sources: [{model: %s}]\n' "$MODEL" > "$OUT/repo/routes.yaml"

version=$(ls "$OUT/repo/$MODEL" | sort -n | tail -1)
echo "== raw onnxruntime Run ($MODEL/$version)"
ONNX_BENCH_MODEL="$PWD/$OUT/repo/$MODEL/$version" go test -run '^$' -bench TrainedRun -benchtime 2000x ./models/onnx/ |
  tee "$OUT/raw.txt" | grep Benchmark
raw_p50=$(awk '/batch=1-/ {for (i = 1; i < NF; i++) if ($(i+1) == "p50-µs") print $i}' "$OUT/raw.txt")

go build -o bin/recserve ./cmd/recserve
go run ./scripts/ghzdata -kind health -out "$OUT/health.bin"
for m in "$MODEL" "${MODEL}_batched"; do
  go run ./scripts/ghzdata -kind recommend -data "$DATA" -users "$USERS" -k 10 -model "$m" -out "$OUT/$m.bin"
done
bin/recserve --addr "$ADDR" --repo "$OUT/repo" --data "$DATA" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if "$GHZ" --insecure --call grpc.health.v1.Health/Check -B "$OUT/health.bin" -n 1 -c 1 "$ADDR" 2>/dev/null | grep -q '\[OK\]'; then
    break
  fi
  sleep 0.1
done

echo "== through the server (ghz, $DURATION per run, $USERS users, k=10)"
printf '%-6s %-18s %s\n' conc model "rps  p50  p99  errors"
for c in 1 8 32 64; do
  for m in "$MODEL" "${MODEL}_batched"; do
    "$GHZ" --insecure --call recserve.v1.RecommendService/Recommend -B "$OUT/$m.bin" -c "$c" -z "$DURATION" \
      -O json "$ADDR" > "$OUT/$m.c$c.json"
    printf '%-6s %-18s %s\n' "$c" "$m" "$(go run ./scripts/ghzsummary "$OUT/$m.c$c.json")"
  done
  echo "       batching speed-up at concurrency $c: $(go run ./scripts/ghzsummary -ratio "$OUT/${MODEL}_batched.c$c.json" "$OUT/$MODEL.c$c.json")"
done

e2e_p50=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(next(d["latency"] for d in r["latencyDistribution"] if d["percentage"]==50)/1000)' "$OUT/$MODEL.c1.json")
echo "== overhead at concurrency 1: end-to-end p50 ${e2e_p50} µs - raw Run p50 ${raw_p50} µs = $(python3 -c "print(round($e2e_p50 - $raw_p50))") µs"
