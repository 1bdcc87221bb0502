#!/usr/bin/env bash
# The batcher's max_queue_delay_us as the neural trainers write it: the demo
# rnn and cnn served three ways in one server (batching off; batching with
# max_queue_delay_us 0, which batches only what queued while a Run was
# busy; batching with 500 µs), through ghz at 1, 8 and 50 concurrent clients
# for 8 s each, with the server's CPU time per request from /proc.
# Env: REPO, DATA (the demo), ADDR, OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/benchlib.sh
SRC=${REPO:-var/demo/repo}; DATA=${DATA:-var/demo/data}; ADDR=${ADDR:-127.0.0.1:50785}
OUT=${OUT:-var/queuedelaybench}; rm -rf "$OUT"; mkdir -p "$OUT/repo"
cp -r "$SRC/popularity" "$OUT/repo/"
for m in rnn cnn; do
  for v in off d0 d500; do
    cp -r "$SRC/$m" "$OUT/repo/${m}_$v"
    y="$OUT/repo/${m}_$v/1/model.yaml"
    sed -i '/^  max_batch_size:/d; /^  max_queue_delay_us:/d' "$y"
    case $v in
      d0) sed -i 's/^params:$/params:\n  max_batch_size: 32\n  max_queue_delay_us: 0/' "$y" ;;
      d500) sed -i 's/^params:$/params:\n  max_batch_size: 32\n  max_queue_delay_us: 500/' "$y" ;;
    esac
  done
done
printf 'default_route: main\nfallback: popularity\nroutes:\n  - name: main\n    sources: [{model: popularity}]\n' > "$OUT/repo/routes.yaml"
go build -o bin/recserve ./cmd/recserve
for m in rnn cnn; do for v in off d0 d500; do
  go run ./scripts/ghzdata -kind recommend -data "$DATA" -users 1000 -k 10 -model "${m}_$v" -out "$OUT/${m}_$v.bin"
done; done
bin/recserve --addr "$ADDR" --repo "$OUT/repo" --data "$DATA" --state "" --log-level warn & pid=$!
trap 'kill $pid; wait $pid 2>/dev/null || true' EXIT
wait_serving "$ADDR"
for m in rnn cnn; do
  for c in 1 8 50; do
    for v in off d0 d500; do
      .tools/ghz --insecure --call recserve.v1.RecommendService/Recommend -B "$OUT/${m}_$v.bin" -c $c -z 2s "$ADDR" >/dev/null 2>&1 # warm-up
      c0=$(proc_cpu $pid)
      .tools/ghz --insecure --call recserve.v1.RecommendService/Recommend -B "$OUT/${m}_$v.bin" -c $c -z 8s -O json "$ADDR" > "$OUT/${m}_${v}_c$c.json"
      c1=$(proc_cpu $pid)
      n=$(ghz_count "$OUT/${m}_${v}_c$c.json")
      echo "${m} c=$c ${v}: $(go run ./scripts/ghzsummary "$OUT/${m}_${v}_c$c.json")  server CPU/request $(per_request $c0 $c1 $n) µs"
    done
  done
done
