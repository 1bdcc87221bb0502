#!/usr/bin/env bash
# Dynamic batching as `make train` writes it, through gRPC: ghz at concurrency
# 50 on each trained neural model (rnn, cnn; model.yaml as written, batching on)
# and on a copy with batching removed, in one server and one run, with the
# server's own CPU time per request from /proc. Env: REPO, DATA (the demo), ADDR.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${REPO:-var/demo/repo}; DATA=${DATA:-var/demo/data}; ADDR=${ADDR:-127.0.0.1:50781}
OUT=${OUT:-var/batchbench}; rm -rf $OUT; mkdir -p $OUT/repo
cp -r $SRC/popularity $OUT/repo/
for m in rnn cnn; do
  cp -r $SRC/$m $OUT/repo/$m
  cp -r $SRC/$m $OUT/repo/${m}_unbatched
  sed -i '/^  max_batch_size:/d; /^  max_queue_delay_us:/d' $OUT/repo/${m}_unbatched/1/model.yaml
done
printf 'default_route: main\nfallback: popularity\nroutes:\n  - name: main\n    sources: [{model: popularity}]\n' > $OUT/repo/routes.yaml
go build -o bin/recserve ./cmd/recserve
go run ./scripts/ghzdata -kind health -out $OUT/health.bin
for m in rnn rnn_unbatched cnn cnn_unbatched; do go run ./scripts/ghzdata -kind recommend -data $DATA -users 1000 -k 10 -model $m -out $OUT/$m.bin; done
bin/recserve --addr $ADDR --repo $OUT/repo --data $DATA --log-level warn & pid=$!
trap 'kill $pid; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do .tools/ghz --insecure --call grpc.health.v1.Health/Check -B $OUT/health.bin -n 1 -c 1 $ADDR 2>/dev/null | grep -q '\[OK\]' && break; sleep 1; done
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
for m in rnn_unbatched rnn cnn_unbatched cnn; do
  .tools/ghz --insecure --call recserve.v1.RecommendService/Recommend -B $OUT/$m.bin -c 50 -z 3s $ADDR >/dev/null 2>&1 # warm-up
  c0=$(cpu)
  .tools/ghz --insecure --call recserve.v1.RecommendService/Recommend -B $OUT/$m.bin -c 50 -z 10s -O json $ADDR > $OUT/$m.json
  c1=$(cpu)
  n=$(python3 -c "import json;print(json.load(open('$OUT/$m.json'))['count'])")
  echo "$m  $(go run ./scripts/ghzsummary $OUT/$m.json)  server CPU/request $(python3 -c "print(round(($c1-$c0)/$tck/$n*1e6))") µs"
done
