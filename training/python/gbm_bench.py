#!/usr/bin/env python3
"""XGBoost side of scripts/gbmbench.sh: train a 500-tree, depth-6
binary:logistic model on synthetic data and time XGBoost's own predictor.

  python3 gbm_bench.py train OUT_DIR
      Writes to OUT_DIR:
        model.json      Booster.save_model JSON (500 trees, max_depth 6)
        rows.csv        benchmark rows (header = feature names, empty = missing)
        xgb_pred.csv    XGBoost's inplace_predict output for rows.csv
        xgb_time.json   XGBoost timings (see below)
      Timings use Booster.inplace_predict on float64 numpy arrays with
      nthread=1 and validate_features=False, after a warm-up; each figure is
      the median of REPS repetitions, as wall time (*_us) and process CPU
      time (*_cpu_us) per call:
        batch1          one row per call (cycling through the rows)
        batch1000       all 1,000 rows in one call
        overhead_us     one row per call on a one-split model: the fixed cost
                        of a call (Python wrapper, ctypes, XGBoost's C API)

  python3 gbm_bench.py report OUT_DIR GO_BENCH_OUTPUT
      Reads xgb_time.json and `go test -bench BenchmarkCompareXGBoost` output
      (several -count runs; the median is used) and prints the table.

Data: deterministic (SEED), 20,000 training rows and 1,000 held-out benchmark
rows, 30 features, about 10% missing values.
"""
import json
import os
import re
import statistics
import sys
import time

import numpy as np
import xgboost as xgb

ROWS = 1000
TRAIN = 20000
FEATURES = 30
MISSING = 0.10
SEED = 20261127
TREES = 500
DEPTH = 6
REPS = 7


def make_data(rng, n):
    x = rng.normal(size=(n, FEATURES))
    x[:, 5] = rng.integers(0, 8, size=n)  # small integers: ties at thresholds
    x = np.round(x, 4)
    score = (1.5 * x[:, 0] - x[:, 1] * x[:, 2] + 0.5 * np.sin(3 * x[:, 4]) + 0.3 * x[:, 5]
             + 0.4 * x[:, 6:16].sum(axis=1) * np.cos(x[:, 16]) - 0.2 * np.abs(x[:, 17:30]).sum(axis=1))
    y = (score + rng.normal(scale=0.8, size=n) > np.median(score)).astype(np.float64)
    x[rng.random(size=x.shape) < MISSING] = np.nan
    return x, y


def fmt(v):
    return "" if np.isnan(v) else repr(float(v))  # repr round-trips exactly


def time_calls(fn, calls):
    """Median over REPS repetitions of the wall time and the process CPU time
    of one fn() call, in µs, after a warm-up."""
    for _ in range(max(calls // 4, 1)):
        fn()
    wall, cpu = [], []
    for _ in range(REPS):
        w0, c0 = time.perf_counter_ns(), time.process_time_ns()
        for _ in range(calls):
            fn()
        cpu.append((time.process_time_ns() - c0) / calls / 1e3)
        wall.append((time.perf_counter_ns() - w0) / calls / 1e3)
    return statistics.median(wall), statistics.median(cpu)


def train(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    x, y = make_data(rng, TRAIN)
    rows, _ = make_data(rng, ROWS)
    names = ["f%d" % i for i in range(FEATURES)]
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": DEPTH,
              "eta": 0.1, "subsample": 0.8, "colsample_bytree": 0.8, "seed": 7, "nthread": 2}
    bst = xgb.train(params, xgb.DMatrix(x, label=y, missing=np.nan, feature_names=names),
                    num_boost_round=TREES)
    path = os.path.join(out, "model.json")
    bst.save_model(path)
    # Benchmark the model as Go loads it: reloaded from model.json.
    bst = xgb.Booster(model_file=path)
    bst.set_param({"nthread": 1})
    with open(os.path.join(out, "rows.csv"), "w") as f:
        f.write(",".join(names) + "\n")
        for row in rows:
            f.write(",".join(fmt(v) for v in row) + "\n")

    def predict(a):
        return bst.inplace_predict(a, missing=np.nan, validate_features=False)

    pred = predict(rows)
    with open(os.path.join(out, "xgb_pred.csv"), "w") as f:
        for v in pred:
            f.write("%.9g\n" % v)

    singles = [np.ascontiguousarray(rows[i:i + 1]) for i in range(ROWS)]
    it = [0]

    def one():
        predict(singles[it[0] % ROWS])
        it[0] += 1

    b1, b1cpu = time_calls(one, 2000)
    b1000, b1000cpu = time_calls(lambda: predict(rows), 20)

    # The fixed cost of a call: the same call on a one-split model.
    stump = xgb.train({"objective": "binary:logistic", "max_depth": 1, "nthread": 1},
                      xgb.DMatrix(x, label=y, missing=np.nan), num_boost_round=1)
    stump.set_param({"nthread": 1})
    ov, _ = time_calls(lambda: stump.inplace_predict(singles[0], missing=np.nan,
                                                     validate_features=False), 2000)
    res = {"xgboost": xgb.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
           "trees": len(bst.get_dump()), "depth": DEPTH, "rows": ROWS, "features": FEATURES,
           "reps": REPS, "batch1_us": b1, "batch1_cpu_us": b1cpu,
           "batch1000_us": b1000, "batch1000_cpu_us": b1000cpu, "overhead_us": ov}
    with open(os.path.join(out, "xgb_time.json"), "w") as f:
        json.dump(res, f, indent=1)
    print("xgboost %s: batch 1 %.2f µs/call, batch 1000 %.1f µs/call (%.2f µs/row), "
          "call overhead %.2f µs" % (xgb.__version__, b1, b1000, b1000 / ROWS, ov))


def go_results(path):
    """Medians of ns/op and cpu-ns/op per BenchmarkCompareXGBoost case."""
    runs = {}
    pat = re.compile(r"^BenchmarkCompareXGBoost/(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op.*?\s([\d.]+) cpu-ns/op")
    with open(path) as f:
        for line in f:
            m = pat.match(line)
            if m:
                runs.setdefault(m.group(1), []).append((float(m.group(2)), float(m.group(3))))
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v), len(v))
            for k, v in runs.items()}


def us(v):
    return "%.1f ms" % (v / 1e3) if v >= 1e3 else "%.2f µs" % v


def report(out, gofile):
    with open(os.path.join(out, "xgb_time.json")) as f:
        xt = json.load(f)
    go = go_results(gofile)
    for k in ("batch1", "batch1000"):
        if k not in go:
            sys.exit("gbm_bench.py: no BenchmarkCompareXGBoost/%s result in %s" % (k, gofile))
    g1, g1cpu, n1 = (v / 1e3 if i < 2 else v for i, v in enumerate(go["batch1"]))
    g1000, g1000cpu, n1000 = (v / 1e3 if i < 2 else v for i, v in enumerate(go["batch1000"]))
    n = xt["rows"]
    x1, x1000 = xt["batch1_us"], xt["batch1000_us"]
    print()
    print("binary:logistic, %d trees of depth %d, %d features (~10%% missing), %d rows; "
          "XGBoost %s inplace_predict, nthread=1; Go -cpu 1"
          % (xt["trees"], xt["depth"], xt["features"], n, xt["xgboost"]))
    print("medians of %d XGBoost repetitions and %d/%d Go -count runs; "
          "ratio = XGBoost time / ours (> 1: ours is faster)" % (xt["reps"], int(n1), int(n1000)))
    print()
    print("| batch | XGBoost per call | ours per call | ratio | ratio of CPU times |")
    print("| --- | --- | --- | --- | --- |")
    print("| 1 | %s | %s | %.1f× | %.1f× |" % (us(x1), us(g1), x1 / g1, xt["batch1_cpu_us"] / g1cpu))
    print("| 1,000 | %s (%s/row) | %s (%s/row) | %.1f× | %.1f× |"
          % (us(x1000), us(x1000 / n), us(g1000), us(g1000 / n), x1000 / g1000,
             xt["batch1000_cpu_us"] / g1000cpu))
    print()
    print("XGBoost at batch 1 includes its fixed per-call cost, %s (the same call on a "
          "one-split model)." % us(xt["overhead_us"]))
    print("Without it, XGBoost's per-row time inside the 1,000-row call (%s) against ours "
          "at batch 1 (%s): %.1f×." % (us(x1000 / n), us(g1), x1000 / n / g1))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "train":
        train(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
