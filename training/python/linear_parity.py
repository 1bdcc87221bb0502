#!/usr/bin/env python3
"""Build scikit-learn parity fixtures for recserve's Go-native linear package.

Generates deterministic synthetic data (10,000 rows, 12 features on very
different scales, about 10% missing values), fits two scikit-learn pipelines
and exports each in the linear.json format that models/linear reads:

  logistic  SimpleImputer(mean) + StandardScaler + LogisticRegression
  svm       SimpleImputer(mean) + StandardScaler + LinearSVC, Platt-scaled
            with a 1-D LogisticRegression fitted on held-out decision values;
            the Platt slope a and offset b are folded into the weights
            (coefficients = a*w, intercept = a*c + b) so the export is still
            one linear model with the logistic link

Writes to OUT_DIR:

  inputs.csv            header = feature names, empty cell = missing; every
                        value printed with %.6g, and the data is rounded to
                        exactly those numbers before fitting and predicting,
                        so Go parses the very numbers Python used
  logistic.json         linear.json of the logistic pipeline
  logistic.pred.csv     sklearn's predict_proba[:, 1], one row per input, %.17g
  svm.json              linear.json of the Platt-folded SVM
  svm.pred.csv          expit(a * decision_function + b), one row per input
  VERSION               the scikit-learn and numpy versions

The exported standardisation is the scaler's: mean = scaler.mean_, scale =
scaler.scale_; impute = imputer.statistics_ (equal to the mean up to
rounding, kept separate so Go reproduces sklearn's arithmetic exactly).

Usage: python3 linear_parity.py [OUT_DIR]   (default: models/linear/testdata)
"""
import json
import os
import sys

import numpy as np
import sklearn
from scipy.special import expit
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

ROWS = 10000
MISSING = 0.10
SEED = 20261127

# name, generator: features on scales from 1e-3 to 1e6, some skewed, one
# binary, one negative-valued.
FEATURES = [
    "user_views",       # counts, heavy tail
    "user_carts",       # small counts
    "item_price",       # log-normal, tens to thousands
    "item_ctr",         # ~1e-2
    "item_age_days",    # 0..2000
    "dwell_seconds",    # exponential
    "revenue_30d",      # ~1e5..1e6
    "price_delta",      # negative and positive
    "is_new",           # 0/1
    "session_depth",    # 1..40
    "brand_affinity",   # -1..1
    "rating",           # 1..5
]


def make_data():
    rng = np.random.default_rng(SEED)
    n = ROWS
    cols = [
        rng.negative_binomial(2, 0.02, size=n).astype(np.float64),
        rng.poisson(1.5, size=n).astype(np.float64),
        rng.lognormal(4.0, 1.0, size=n),
        rng.beta(2, 150, size=n),
        rng.uniform(0, 2000, size=n),
        rng.exponential(45.0, size=n),
        rng.lognormal(12.5, 0.6, size=n),
        rng.normal(0, 25.0, size=n),
        (rng.random(size=n) < 0.2).astype(np.float64),
        rng.integers(1, 41, size=n).astype(np.float64),
        rng.uniform(-1, 1, size=n),
        rng.uniform(1, 5, size=n),
    ]
    x = np.column_stack(cols)
    # Round to the printed precision BEFORE anything uses the data.
    x = np.array([[float("%.6g" % v) for v in row] for row in x])
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    w = np.array([0.8, 0.6, -0.7, 0.9, -0.4, 0.3, 0.2, -0.5, 0.4, 0.1, 1.1, 0.5])
    logit = z @ w - 0.3 + rng.normal(scale=1.0, size=n)
    y = (logit > 0).astype(np.int64)
    mask = rng.random(size=x.shape) < MISSING
    x[mask] = np.nan
    return x, y


def fmt(v):
    return "" if np.isnan(v) else "%.6g" % v


def export(path, model, imputer, scaler, coef, intercept):
    doc = {
        "model": model,
        "features": FEATURES,
        "coefficients": [float(c) for c in coef],
        "intercept": float(intercept),
        "mean": [float(v) for v in scaler.mean_],
        "scale": [float(v) for v in scaler.scale_],
        "impute": [float(v) for v in imputer.statistics_],
        "link": "logistic",
    }
    # json writes floats with repr(): the shortest string that round-trips, so
    # Go parses exactly these float64 values.
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")


def write_pred(path, p):
    with open(path, "w") as f:
        for v in p:
            f.write("%.17g\n" % v)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "linear", "testdata")
    os.makedirs(out, exist_ok=True)
    x, y = make_data()
    with open(os.path.join(out, "inputs.csv"), "w") as f:
        f.write(",".join(FEATURES) + "\n")
        for row in x:
            f.write(",".join(fmt(v) for v in row) + "\n")

    # (a) logistic regression.
    lr = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler(), LogisticRegression(max_iter=1000))
    lr.fit(x, y)
    imp, sc, clf = lr.named_steps["simpleimputer"], lr.named_steps["standardscaler"], lr.named_steps["logisticregression"]
    export(os.path.join(out, "logistic.json"), "logistic_regression", imp, sc, clf.coef_[0], clf.intercept_[0])
    write_pred(os.path.join(out, "logistic.pred.csv"), lr.predict_proba(x)[:, 1])

    # (b) linear SVM, Platt-scaled on a held-out split.
    cut = int(ROWS * 0.7)
    svm = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler(),
                        LinearSVC(C=0.5, dual=False, max_iter=10000, random_state=0))
    svm.fit(x[:cut], y[:cut])
    held = svm.decision_function(x[cut:]).reshape(-1, 1)
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(held, y[cut:])
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    imp, sc, clf = svm.named_steps["simpleimputer"], svm.named_steps["standardscaler"], svm.named_steps["linearsvc"]
    export(os.path.join(out, "svm.json"), "linear_svm", imp, sc, a * clf.coef_[0], a * clf.intercept_[0] + b)
    write_pred(os.path.join(out, "svm.pred.csv"), expit(a * svm.decision_function(x) + b))

    with open(os.path.join(out, "VERSION"), "w") as f:
        f.write("scikit-learn %s, numpy %s\n" % (sklearn.__version__, np.__version__))


if __name__ == "__main__":
    main()
