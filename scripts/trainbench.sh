#!/usr/bin/env bash
# Training cost of every Go-native kind on one data set: wall time, the fit
# time recorded in model.yaml (training_seconds), and peak resident memory of
# the whole `recctl train` process (data set reading included).
#
#   scripts/trainbench.sh [USERS ITEMS]     (default 50000 20000; the data set is cached in var/)
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-50000}
ITEMS=${2:-20000}
DATA=var/bench/data-$USERS-$ITEMS
OUT=var/bench/repo-$USERS-$ITEMS
make --no-print-directory build >/dev/null
if [ ! -f "$DATA/interactions.csv" ]; then
  bin/recctl datagen --out "$DATA" --users "$USERS" --items "$ITEMS"
fi
rm -rf "$OUT"
printf '%-11s %10s %10s %12s\n' kind wall_s fit_s peak_rss_MB
for kind in popularity itemknn userknn content; do
  /usr/bin/time -f '%e %M' -o "$OUT.time" bin/recctl train "$kind" --data "$DATA" --out "$OUT/$kind/1" >/dev/null
  read -r wall rss < "$OUT.time"
  fit=$(awk '/training_seconds:/ {print $2}' "$OUT/$kind/1/model.yaml")
  printf '%-11s %10s %10.2f %12d\n' "$kind" "$wall" "$fit" $((rss / 1024))
done
rm -f "$OUT.time"
