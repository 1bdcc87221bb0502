#!/usr/bin/env bash
# Before/after benchmarks of two commits on a shared, noisy machine. For each
# PKG:REGEX argument it builds the package's test binary at both commits
# (from `git archive`, so no checkout is touched) twice: as usual, timing
# benchmarks by wall clock, and with the testing package overlaid so that
# benchmarks time themselves by the process's CPU time (CLOCK_PROCESS_CPUTIME_ID:
# the other jobs' preemption does not count, GC workers' CPU does). It then
# runs the four binaries alternately, one -count 1 run each per round, so that
# slow drifts of the machine hit before and after alike, and prints benchstat
# for both timings. Results and binaries are in var/benchab/.
#
#   BEFORE=rev [AFTER=rev] [ROUNDS=6] [NICE=0] scripts/benchab.sh PKG:REGEX [PKG:REGEX...] [-- test flags]
#   e.g. BEFORE=3935dba scripts/benchab.sh ./models/topk:. ./models/itemknn:'^BenchmarkRecommend$' -- -test.benchtime 0.5s
#
# AFTER defaults to the working tree. benchstat: $BENCHSTAT, else on PATH
# (go install golang.org/x/perf/cmd/benchstat@latest). The overlay replaces
# $GOROOT/src/testing/testing_other.go as of Go 1.26.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?set BEFORE to the base revision}"
ROUNDS=${ROUNDS:-6}
NICE=${NICE:-0}
BENCHSTAT=${BENCHSTAT:-benchstat}
OUT=$PWD/var/benchab
ROOT=$PWD
mkdir -p "$OUT/src" "$OUT/bin"

specs=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do specs+=("$1"); shift; done
[ $# -gt 0 ] && shift
flags=("$@")

cat > "$OUT/testing_other.go" <<'EOF'
//go:build !windows

// testing/testing_other.go, with benchmark time measured as process CPU time.

package testing

import (
	"syscall"
	"time"
	"unsafe"
)

func isWindowsRetryable(err error) bool { return false }

type highPrecisionTime struct {
	now time.Time
	cpu int64
}

func processCPU() int64 {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 2 /* CLOCK_PROCESS_CPUTIME_ID */, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

func highPrecisionTimeNow() highPrecisionTime {
	return highPrecisionTime{now: time.Now(), cpu: processCPU()}
}

func highPrecisionTimeSince(b highPrecisionTime) time.Duration {
	return time.Duration(processCPU() - b.cpu)
}
EOF
printf '{"Replace":{"%s/src/testing/testing_other.go":"%s"}}\n' \
  "$(go env GOROOT)" "$OUT/testing_other.go" > "$OUT/overlay.json"

# tree REV DIR: the source of REV in DIR (the working tree for an empty REV).
tree() {
  if [ -z "$1" ]; then echo "$ROOT"; return; fi
  rm -rf "$2"; mkdir -p "$2"
  git archive "$1" | tar -x -C "$2"
  echo "$2"
}
src_before=$(tree "$BEFORE" "$OUT/src/before")
src_after=$(tree "${AFTER:-}" "$OUT/src/after")

for spec in "${specs[@]}"; do
  pkg=${spec%%:*} regex=${spec#*:}
  name=$(echo "${pkg#./}" | tr / _)
  for side in before after; do
    src=src_$side
    (cd "${!src}" && go test -c -o "$OUT/bin/$name-$side.test" "$pkg" &&
      go test -overlay "$OUT/overlay.json" -c -o "$OUT/bin/$name-$side-cpu.test" "$pkg")
  done
  for v in before after before-cpu after-cpu; do : > "$OUT/$name-$v.txt"; done
  for r in $(seq "$ROUNDS"); do
    for v in before after before-cpu after-cpu; do
      (cd "$ROOT/$pkg" && nice -n "$NICE" "$OUT/bin/$name-$v.test" -test.run '^$' -test.bench "$regex" \
        -test.count 1 ${flags[@]+"${flags[@]}"} >> "$OUT/$name-$v.txt")
    done
  done
  echo "== $pkg: wall time"
  "$BENCHSTAT" "$OUT/$name-before.txt" "$OUT/$name-after.txt"
  echo "== $pkg: CPU time"
  "$BENCHSTAT" "$OUT/$name-before-cpu.txt" "$OUT/$name-after-cpu.txt"
done
