#!/usr/bin/env bash
# Go-native XGBoost inference (models/gbm) against XGBoost's own predictor, in
# one run, on the same model and rows:
#   1. training/python/gbm_bench.py trains a binary:logistic model (500 trees,
#      max_depth 6, 30 features with missing values, fixed seeds), writes
#      model.json, 1,000 benchmark rows and XGBoost's predictions for them, and
#      times Booster.inplace_predict with nthread=1 at batch 1 and 1,000;
#   2. TestCompareXGBoostOutputs checks Go's predictions on those rows against
#      XGBoost's (max abs diff <= 1e-6);
#   3. BenchmarkCompareXGBoost times Predict (batch 1) and PredictBatch (batch
#      1,000) on one CPU (GOMAXPROCS=1, -cpu 1);
#   4. gbm_bench.py prints the table: XGBoost time, ours, ratio.
#
#   scripts/gbmbench.sh            (files in var/gbmbench; COUNT=5 Go runs,
#                                   BENCHTIME=1s each; PYTHON=/usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-var/gbmbench}
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
export PATH=/usr/local/go/bin:$PATH
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

echo "== XGBoost: train and time ($("$PYTHON" -c 'import xgboost; print(xgboost.__version__)'))"
"$PYTHON" training/python/gbm_bench.py train "$OUT"

echo "== Go: same predictions as XGBoost?"
GBM_BENCH_DIR="$OUT" go test -count 1 -run '^TestCompareXGBoostOutputs$' -v ./models/gbm/ | grep -E 'max abs diff|^(ok|FAIL|---)'

echo "== Go: benchmark (-count $COUNT, -benchtime $BENCHTIME, one CPU)"
GBM_BENCH_DIR="$OUT" GOMAXPROCS=1 go test -run '^$' -bench '^BenchmarkCompareXGBoost$' \
  -benchtime "$BENCHTIME" -count "$COUNT" -cpu 1 ./models/gbm/ | tee "$OUT/go_bench.txt" | grep '^Benchmark'

"$PYTHON" training/python/gbm_bench.py report "$OUT" "$OUT/go_bench.txt"
