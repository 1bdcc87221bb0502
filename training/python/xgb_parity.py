#!/usr/bin/env python3
"""Build XGBoost parity fixtures for recserve's Go-native gbm package.

Generates deterministic synthetic data (12,000 rows, 10 features, about 10%
missing values), trains one model per objective, and writes to OUT_DIR:

  inputs.csv            header = feature names, empty cell = missing
  <name>.json           Booster.save_model JSON
  <name>.pred.csv       XGBoost's own predictions, one row per input row
                        (one column, or one per class for multi:softprob)

Models: binary (binary:logistic), regression (reg:squarederror),
multiclass (multi:softprob, 3 classes), forest (binary:logistic random forest,
num_parallel_tree=20), dart (binary:logistic, DART booster, 15 rounds).

Usage: python3 xgb_parity.py [OUT_DIR]   (default: models/gbm/testdata)
"""
import os
import sys

import numpy as np
import xgboost as xgb

ROWS = 12000
FEATURES = 10
MISSING = 0.10
SEED = 20261126


def make_data():
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(ROWS, FEATURES))
    x[:, 3] = rng.integers(0, 5, size=ROWS)  # a small-integer feature: ties at thresholds
    x = np.round(x, 4)
    score = 1.5 * x[:, 0] - x[:, 1] * x[:, 2] + 0.5 * np.sin(3 * x[:, 4]) + 0.3 * x[:, 3]
    noise = rng.normal(scale=0.5, size=ROWS)
    y_reg = score + noise
    y_bin = (score + noise > 0.2).astype(np.float64)
    y_multi = np.digitize(score + noise, [-0.7, 0.7]).astype(np.float64)
    mask = rng.random(size=x.shape) < MISSING
    x[mask] = np.nan
    return x, y_reg, y_bin, y_multi


def fmt(v):
    return "" if np.isnan(v) else "%.4f" % v


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "gbm", "testdata")
    os.makedirs(out, exist_ok=True)
    x, y_reg, y_bin, y_multi = make_data()
    names = ["f%d" % i for i in range(FEATURES)]
    with open(os.path.join(out, "inputs.csv"), "w") as f:
        f.write(",".join(names) + "\n")
        for row in x:
            f.write(",".join(fmt(v) for v in row) + "\n")

    base = {"nthread": 1, "seed": 7, "tree_method": "hist", "max_depth": 5, "eta": 0.3}
    specs = {
        "binary": ({"objective": "binary:logistic"}, y_bin, 40),
        "regression": ({"objective": "reg:squarederror"}, y_reg, 40),
        "multiclass": ({"objective": "multi:softprob", "num_class": 3}, y_multi, 20),
        "forest": ({"objective": "binary:logistic", "num_parallel_tree": 20, "eta": 1.0,
                    "subsample": 0.8, "colsample_bynode": 0.8, "max_depth": 6}, y_bin, 1),
        "dart": ({"objective": "binary:logistic", "booster": "dart", "rate_drop": 0.2,
                  "skip_drop": 0.0, "max_depth": 4}, y_bin, 15),
    }
    for name, (params, y, rounds) in specs.items():
        p = dict(base)
        p.update(params)
        dtrain = xgb.DMatrix(x, label=y, missing=np.nan, feature_names=names)
        bst = xgb.train(p, dtrain, num_boost_round=rounds)
        bst.save_model(os.path.join(out, name + ".json"))
        pred = bst.predict(xgb.DMatrix(x, missing=np.nan, feature_names=names), output_margin=False)
        pred = pred.reshape(ROWS, -1)
        with open(os.path.join(out, name + ".pred.csv"), "w") as f:
            for row in pred:
                f.write(",".join("%.9g" % v for v in row) + "\n")
    with open(os.path.join(out, "VERSION"), "w") as f:
        f.write("xgboost %s\n" % xgb.__version__)


if __name__ == "__main__":
    main()
