#!/usr/bin/env python3
"""Train a linear purchase-propensity scorer (kind linear): logistic regression or linear SVM.

Reads the features CSV written by `recctl features` and splits it as
train_gbm.py does (latest cut, else by user). The model is a scikit-learn
pipeline: SimpleImputer(mean of the train rows; a feature missing on every
train row imputes 0), StandardScaler (a constant feature gets scale 1), then

  --model logistic   LogisticRegression(C, max_iter=2000)
  --model svm        LinearSVC(C, dual=False), Platt-scaled: a 1-D logistic
                     regression p = sigmoid(a*d + b) of the decision value d
                     is fit on 20% of the train users held out from the SVM
                     fit, and folded into the weights (w' = a*w,
                     b' = a*b0 + b), so the export is still one linear model
                     with the logistic link.

Writes a model version directory:

  linear.json  {"model", "features", "coefficients", "intercept", "mean",
               "scale", "impute", "link": "logistic"}; output =
               sigmoid(intercept + sum_j coefficients_j * (x'_j - mean_j) / scale_j)
               where x'_j = impute_j for a missing x_j
  model.yaml   kind: linear, file: linear.json, features, metadata

The script checks that this formula, computed in numpy, reproduces the
pipeline's validation probabilities to 1e-9. Prints `valid auc=...
logloss=... rows=... positives=... train_rows=... train_positives=...`.

Usage:
  /usr/bin/python3 training/python/train_linear.py --features features.csv \\
      --out repo/propensity_lr/1 [--model logistic|svm] [--C 1.0] \\
      [--valid-frac 0.2] [--seed 7] [--calib-frac 0.2] \\
      [--exclude-columns a,b] [--force]
"""
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

import propensity  # noqa: E402
from propensity import TrainError, log  # noqa: E402

PROG = "train_linear.py"
MAX_ITER = 2000
TOLERANCE = 1e-9


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def export_predict(lin, x):
    """The linear.json formula (what the Go loader computes) on raw rows x."""
    xi = np.where(np.isnan(x), np.asarray(lin["impute"]), x)
    z = (xi - np.asarray(lin["mean"])) / np.asarray(lin["scale"])
    return sigmoid(lin["intercept"] + z @ np.asarray(lin["coefficients"]))


def pipeline(model, C, seed):
    if model == "logistic":
        clf = LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed)
    else:
        clf = LinearSVC(C=C, dual=False, max_iter=MAX_ITER, random_state=seed)
    return Pipeline([
        ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
        ("scale", StandardScaler()),
        ("clf", clf),
    ])


def fit(pipe, x, y, what):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipe.fit(x, y)
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            print("%s: warning: %s did not converge in %d iterations (try a smaller --C)"
                  % (PROG, what, MAX_ITER), file=sys.stderr)
            break


def main():
    p = propensity.parser(__doc__.split("\n")[0])
    propensity.add_common_args(p)
    p.add_argument("--model", choices=["logistic", "svm"], default="logistic",
                   help="logistic regression or Platt-scaled linear SVM")
    p.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    p.add_argument("--calib-frac", type=float, default=0.2,
                   help="svm: fraction of train users held out to fit the Platt scaling")
    args = p.parse_args()

    def run():
        propensity.check_common_args(args)
        if not args.C > 0:
            raise TrainError("--C %g: want a positive number" % args.C)
        if not 0 < args.calib_frac < 1:
            raise TrainError("--calib-frac %g: want a fraction strictly between 0 and 1" % args.calib_frac)
        exclude = propensity.parse_exclude(args.exclude_columns)
        t0 = time.monotonic()
        ds = propensity.read_features(args.features, exclude)
        log("read %s: %d rows, %d features (%.1fs)" % (ds.path, len(ds), len(ds.features), time.monotonic() - t0))
        sp = propensity.split(ds, args.valid_frac, args.seed)
        log("split " + sp.description)

        t0 = time.monotonic()
        extra = {}
        xv, yv = ds.x[sp.valid], ds.y[sp.valid]
        if args.model == "logistic":
            fit_rows = sp.train
            pipe = pipeline("logistic", args.C, args.seed)
            fit(pipe, ds.x[fit_rows], ds.y[fit_rows], "LogisticRegression")
            clf = pipe.named_steps["clf"]
            coef = clf.coef_[0].astype(np.float64)
            intercept = float(clf.intercept_[0])
            p_pipe = pipe.predict_proba(xv)[:, 1]
            name = "logistic_regression"
        else:
            fit_rows, calib_rows = propensity.group_subsplit(ds, sp.train, args.calib_frac, args.seed)
            for what, idx in (("SVM fit", fit_rows), ("Platt calibration", calib_rows)):
                if len(np.unique(ds.y[idx])) < 2:
                    raise TrainError("%s: the %s rows (%d) have a single class; use more data or another --calib-frac"
                                     % (ds.path, what, len(idx)))
            pipe = pipeline("svm", args.C, args.seed)
            fit(pipe, ds.x[fit_rows], ds.y[fit_rows], "LinearSVC")
            d_calib = pipe.decision_function(ds.x[calib_rows]).reshape(-1, 1)
            platt = LogisticRegression(C=1e6, max_iter=MAX_ITER).fit(d_calib, ds.y[calib_rows])
            a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
            if not a > 0:
                print("%s: warning: Platt slope a=%g is not positive: the SVM ranks no better than chance"
                      % (PROG, a), file=sys.stderr)
            clf = pipe.named_steps["clf"]
            coef = a * clf.coef_[0].astype(np.float64)
            intercept = a * float(clf.intercept_[0]) + b
            p_pipe = platt.predict_proba(pipe.decision_function(xv).reshape(-1, 1))[:, 1]
            name = "linear_svm"
            extra = {"platt_a": a, "platt_b": b, "fit_rows": int(len(fit_rows)),
                     "calib_rows": int(len(calib_rows))}
        train_seconds = time.monotonic() - t0

        imputer, scaler = pipe.named_steps["impute"], pipe.named_steps["scale"]
        scale = np.asarray(scaler.scale_, dtype=np.float64)
        if np.any(~(scale > 0)):
            raise TrainError("internal: StandardScaler produced a zero scale")
        empty = [f for f, n in zip(ds.features, np.isnan(ds.x[fit_rows]).all(axis=0)) if n]
        if empty:
            print("%s: warning: feature(s) missing on every train row (impute 0, weight ~0): %s"
                  % (PROG, ", ".join(empty)), file=sys.stderr)
        lin = {
            "model": name,
            "features": list(ds.features),
            "coefficients": propensity.finite_list(coef, "coefficients"),
            "intercept": propensity.finite_list([intercept], "intercept")[0],
            "mean": propensity.finite_list(scaler.mean_, "mean"),
            "scale": propensity.finite_list(scale, "scale"),
            "impute": propensity.finite_list(imputer.statistics_, "impute"),
            "link": "logistic",
        }
        # What is exported must be what was evaluated.
        p_valid = export_predict(lin, xv)
        diff = float(np.max(np.abs(p_valid - p_pipe)))
        if not diff <= TOLERANCE:
            raise TrainError("internal: linear.json formula differs from the %s pipeline by %g (> %g) on %s"
                             % (name, diff, TOLERANCE, ds.path))
        log("trained %s in %.1fs; exported formula matches the pipeline (max diff %.2g)"
            % (name, train_seconds, diff))
        train_auc, train_ll = propensity.metrics(ds.y[sp.train], export_predict(lin, ds.x[sp.train]))
        extra.update({"train_auc": round(train_auc, 6), "train_logloss": round(train_ll, 6),
                      "train_seconds": round(train_seconds, 2), "export_max_abs_diff": diff})
        m = propensity.report(ds, sp, p_valid, extra)

        hyper = {"model": args.model, "C": args.C, "max_iter": MAX_ITER, "impute": "mean",
                 "scale": "standard", "seed": args.seed, "valid_frac": args.valid_frac}
        if args.model == "logistic":
            hyper["solver"] = "lbfgs"
        else:
            hyper.update({"dual": False, "loss": "squared_hinge", "calibration": "platt",
                          "calib_frac": args.calib_frac})
        spec = {
            "kind": "linear",
            "file": "linear.json",
            "features": list(ds.features),
            "metadata": propensity.metadata(PROG, ds, sp, m, hyper,
                                            {"sklearn_version": sklearn.__version__}, exclude),
        }
        files = {
            "linear.json": (json.dumps(lin, indent=2) + "\n").encode(),
            "model.yaml": propensity.spec_yaml(spec).encode(),
        }
        out = propensity.write_version(args.out, files, args.force)
        log("wrote %s" % out)

    propensity.run(run, PROG)


if __name__ == "__main__":
    main()
