#!/usr/bin/env bash
# Trains the model repository REPO from the canonical data set DATA (`make
# train` runs this): every demo model the data set supports. What it supports
# is decided up front from the data (`recctl datainfo`), and each model it
# cannot train is skipped with the reason:
#   propensity, propensity_rf, propensity_lr, propensity_svm  need purchases
#       that `recctl features` can label;
#   content      needs item text (title, description, category or brand);
#   autoencoder, cnn, rnn  need a user who touched two different items;
#   trending     trains always (without item categories it ranks by recent
#                global popularity, which it says).
# Any other failure stops the script (and make) with the failing command's
# status. The repository is built in REPO.tmp and renamed to REPO at the end.
#
# Env: DATA, REPO (required); PYTHON (/usr/bin/python3); RECCTL (bin/recctl);
#      EPOCHS (empty: each neural trainer's own maximum) caps the epochs of
#      the autoencoder, cnn and rnn.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATA:?DATA: the canonical data set directory}" "${REPO:?REPO: the model repository to write}"
PYTHON=${PYTHON:-/usr/bin/python3}
RECCTL=${RECCTL:-bin/recctl}
EPOCHS=${EPOCHS:-}
tmp=$REPO.tmp

# run prints a command, then runs it; a failure ends the script (set -e).
run() {
  echo "$*"
  "$@"
}

info=$("$RECCTL" datainfo --data "$DATA")
echo "$info"
for need in purchases item-text categories histories; do
  grep -q "^$need " <<<"$info" || { echo "train.sh: recctl datainfo did not report the need $need" >&2; exit 1; }
done
# lacks NEED: true when the data set does not meet NEED; prints why.
lacks() {
  awk -v need="$1" '$1 == need && $2 == "no" { sub(/^[^ ]+ +no +/, ""); print; found = 1 } END { exit !found }' <<<"$info"
}

trained=()
skipped=()
# skip NAMES... -- REASON: records and prints a skip.
skip() {
  local names=() line
  while [ "$1" != "--" ]; do names+=("$1"); shift; done
  shift
  line="skipped $(printf '%s, ' "${names[@]}" | sed 's/, $//'): $*"
  echo "$line"
  skipped+=("$line")
}

epochs=()
[ -n "$EPOCHS" ] && epochs=(--epochs "$EPOCHS")

rm -rf "$tmp" && mkdir -p "$tmp"
run "$RECCTL" train popularity --data "$DATA" --out "$tmp/popularity/1"
run "$RECCTL" train popularity --data "$DATA" --out "$tmp/trending/1" --param half_life_days=7 --param scope=category
trained+=(popularity trending)
if why=$(lacks categories); then
  echo "note: trending: $why: it ranks by 7-day global popularity"
fi
run "$RECCTL" train itemknn --data "$DATA" --out "$tmp/itemknn/1"
run "$RECCTL" train userknn --data "$DATA" --out "$tmp/userknn/1"
trained+=(itemknn userknn)
if why=$(lacks item-text); then
  skip content -- "$why"
else
  run "$RECCTL" train content --data "$DATA" --out "$tmp/content/1"
  trained+=(content)
fi

if why=$(lacks purchases); then
  skip propensity propensity_rf propensity_lr propensity_svm -- "$why"
else
  run "$RECCTL" features --data "$DATA" --out "$tmp/.features.csv"
  run "$PYTHON" training/python/train_gbm.py --features "$tmp/.features.csv" --out "$tmp/propensity/1"
  run "$PYTHON" training/python/train_rf.py --trees 100 --features "$tmp/.features.csv" --out "$tmp/propensity_rf/1"
  run "$PYTHON" training/python/train_linear.py --features "$tmp/.features.csv" --out "$tmp/propensity_lr/1"
  run "$PYTHON" training/python/train_linear.py --model svm --features "$tmp/.features.csv" --out "$tmp/propensity_svm/1"
  rm "$tmp/.features.csv"
  trained+=(propensity propensity_rf propensity_lr propensity_svm)
fi

if why=$(lacks histories); then
  skip autoencoder cnn rnn -- "$why"
else
  run "$PYTHON" training/python/train_ae.py --data "$DATA" --out "$tmp/autoencoder/1" "${epochs[@]}"
  run "$PYTHON" training/python/train_cnn.py --data "$DATA" --out "$tmp/cnn/1" "${epochs[@]}"
  run "$PYTHON" training/python/train_rnn.py --data "$DATA" --out "$tmp/rnn/1" "${epochs[@]}"
  trained+=(autoencoder cnn rnn)
fi

run cp configs/routes.yaml "$tmp/routes.yaml"
rm -rf "$REPO" && mv "$tmp" "$REPO" && touch "$REPO/.trained"

echo "trained ${#trained[@]} models into $REPO: ${trained[*]}"
for line in "${skipped[@]}"; do
  echo "$line"
done
# Models routes.yaml names but the repository lacks: the router drops such a
# route source (logging a warning) and the route still answers from the
# rest; a default_scorer or default_similar that is missing answers
# FailedPrecondition unless the request names a model.
missing=()
for m in $(sed 's/#.*//' "$REPO/routes.yaml" | grep -oE '(model|default_scorer|default_similar|fallback): *\[?[A-Za-z0-9_.-]+' | grep -oE '[A-Za-z0-9_.-]+$' | sort -u); do
  [ -d "$REPO/$m" ] || missing+=("$m")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "note: routes.yaml names models not trained here (${missing[*]}): a route drops such a source and answers from the rest;" \
    "as default_scorer or default_similar, requests that name no model get FailedPrecondition"
fi
