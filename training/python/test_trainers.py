#!/usr/bin/env python3
"""End-to-end tests of the purchase-propensity trainers.

Run: /usr/bin/python3 -m unittest training/python/test_trainers.py
 or: /usr/bin/python3 training/python/test_trainers.py

Each test writes a synthetic features CSV (the shape `recctl features`
writes: user_id,item_id,cut,label,<20 features>, about 15% empty cells, about
1 positive to 4 negatives, 3 cuts, label driven by the features) into a temp
dir and runs the trainers as subprocesses.

make_csv is also usable on its own to make a bigger file by hand:
  /usr/bin/python3 training/python/test_trainers.py --make-csv /tmp/f.csv 100000
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import pandas as pd
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable
SPEC_KEYS = {"kind", "file", "items", "features", "signature", "inputs", "outputs", "params", "metadata"}
LINEAR_KEYS = ["model", "features", "coefficients", "intercept", "mean", "scale", "impute", "link"]
VALID_RE = re.compile(r"^valid auc=([0-9.]+) logloss=([0-9.]+) rows=(\d+) positives=([0-9.]+) "
                      r"train_rows=(\d+) train_positives=([0-9.]+)$", re.M)

FEATURES = [
    "views_1d", "views_7d", "views_30d", "carts_7d", "carts_30d", "purchases_30d",
    "purchases_365d", "item_views_7d", "item_purchases_30d", "item_conversion_rate",
    "user_conversion_rate", "cart_rate_7d", "price", "price_vs_user_avg", "discount_frac",
    "days_since_last_view", "days_since_last_purchase", "category_affinity",
    "brand_affinity", "sessions_7d",
]


def make_csv(path, rows=6000, cuts=3, seed=1, missing=0.15, users=None):
    """Writes a synthetic features CSV to path; returns the DataFrame written."""
    rng = np.random.default_rng(seed)
    users = users or max(2, rows // 6)
    user = rng.integers(0, users, size=rows)
    u_act = rng.gamma(2.0, 1.0, size=users)[user]  # per-user activity, shared across rows
    item = rng.integers(0, 500, size=rows)
    cut_values = 1_700_000_000 + 86400 * 7 * np.arange(cuts)
    cut = cut_values[rng.integers(0, cuts, size=rows)]
    f = {}
    f["views_1d"] = rng.poisson(0.5 * u_act)
    f["views_7d"] = f["views_1d"] + rng.poisson(2.0 * u_act)
    f["views_30d"] = f["views_7d"] + rng.poisson(6.0 * u_act)
    f["carts_7d"] = rng.binomial(f["views_7d"], 0.15)
    f["carts_30d"] = f["carts_7d"] + rng.poisson(0.5 * u_act)
    f["purchases_30d"] = rng.binomial(f["carts_30d"], 0.4)
    f["purchases_365d"] = f["purchases_30d"] + rng.poisson(2.0 * u_act)
    f["item_views_7d"] = rng.poisson(50, size=rows)
    f["item_purchases_30d"] = rng.poisson(5, size=rows)
    f["item_conversion_rate"] = np.round(rng.beta(2, 30, size=rows), 5)
    f["user_conversion_rate"] = np.round(f["purchases_365d"] / (f["views_30d"] + 5.0), 5)
    f["cart_rate_7d"] = np.round(f["carts_7d"] / np.maximum(f["views_7d"], 1), 5)
    f["price"] = np.round(np.exp(rng.normal(3.5, 1.0, size=rows)), 2)
    f["price_vs_user_avg"] = np.round(np.exp(rng.normal(0, 0.5, size=rows)), 4)
    f["discount_frac"] = np.round(np.where(rng.random(rows) < 0.3, rng.uniform(0.05, 0.5, rows), 0.0), 3)
    f["days_since_last_view"] = np.round(rng.exponential(5.0 / u_act), 2)
    f["days_since_last_purchase"] = np.round(rng.exponential(60.0 / u_act), 2)
    f["category_affinity"] = np.round(rng.beta(2, 5, size=rows), 4)
    f["brand_affinity"] = np.round(rng.beta(1, 6, size=rows), 4)
    f["sessions_7d"] = rng.poisson(1.5 * u_act)
    score = (1.2 * np.log1p(f["carts_7d"]) + 0.8 * np.log1p(f["views_1d"])
             + 3.0 * f["category_affinity"] + 2.0 * f["brand_affinity"]
             - 0.6 * np.log(f["price_vs_user_avg"] + 0.05) ** 2
             + 2.5 * f["discount_frac"] * (f["price"] > 30)
             - 0.15 * np.minimum(f["days_since_last_view"], 15)
             + 8.0 * f["user_conversion_rate"])
    score = score - np.quantile(score, 0.84) + rng.logistic(scale=0.8, size=rows)
    label = (score > 0).astype(int)
    df = pd.DataFrame({"user_id": ["u%d" % u for u in user], "item_id": ["i%d" % i for i in item],
                       "cut": cut, "label": label})
    for name in FEATURES:
        col = np.asarray(f[name], dtype=np.float64)
        col[rng.random(rows) < missing] = np.nan
        df[name] = col
    df.to_csv(path, index=False, na_rep="", float_format="%.6g")
    return df


def run(script, *args):
    """Runs a trainer; returns (CompletedProcess, seconds)."""
    t0 = time.monotonic()
    r = subprocess.run([PYTHON, os.path.join(HERE, script)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    return r, time.monotonic() - t0


def valid_line(stdout):
    m = VALID_RE.search(stdout)
    if not m:
        raise AssertionError("no valid line in output:\n" + stdout)
    return float(m.group(1)), float(m.group(2)), int(m.group(3)), float(m.group(4)), int(m.group(5))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class Trainers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="recserve-trainers-")
        cls.csv = os.path.join(cls.tmp, "features.csv")
        cls.df = make_csv(cls.csv)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def out(self, name):
        return os.path.join(self.tmp, "repo", name, "1")

    def check_spec(self, out, kind, file, trainer, extra_version_key):
        with open(os.path.join(out, "model.yaml")) as f:
            spec = yaml.safe_load(f)
        self.assertTrue(set(spec) <= SPEC_KEYS, "model.yaml keys %s; allowed %s" % (sorted(spec), SPEC_KEYS))
        self.assertEqual(spec["kind"], kind)
        self.assertEqual(spec["file"], file)
        self.assertEqual(spec["features"], FEATURES)
        md = spec["metadata"]
        self.assertEqual(md["trainer"], trainer)
        self.assertRegex(md["trained_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(md["dataset"], os.path.abspath(self.csv))
        self.assertRegex(md["dataset_sha256"], r"^[0-9a-f]{64}$")
        self.assertIn(extra_version_key, md)
        self.assertEqual(md["split"], "latest-cut")
        for k in ("valid_auc", "valid_logloss", "train_rows", "valid_rows"):
            self.assertIn(k, md["metrics"])
        self.assertIsInstance(md["hyperparameters"], dict)
        self.assertFalse([n for n in os.listdir(os.path.dirname(out)) if ".tmp-" in n or ".old-" in n])
        return spec

    def valid_rows(self):
        last = self.df["cut"].max()
        v = self.df[self.df["cut"] == last]
        return v[FEATURES].to_numpy(dtype=np.float64), v["label"].to_numpy()

    def test_gbm(self):
        import xgboost as xgb
        from sklearn.metrics import roc_auc_score
        out = self.out("gbm")
        r, secs = run("train_gbm.py", "--features", self.csv, "--out", out, "--rounds", "200",
                      "--early-stopping", "20", "--eta", "0.1")
        self.assertEqual(r.returncode, 0, r.stderr)
        auc, ll, rows, pos, train_rows = valid_line(r.stdout)
        self.assertGreater(auc, 0.7)
        self.assertIn("latest-cut", r.stdout)
        spec = self.check_spec(out, "gbm", "model.json", "train_gbm.py", "xgboost_version")
        self.assertEqual(spec["params"], {"format": "xgboost_json"})
        self.assertIn("best_iteration", spec["metadata"]["metrics"])
        x, y = self.valid_rows()
        self.assertEqual(rows, len(y))
        self.assertEqual(train_rows + rows, len(self.df))
        bst = xgb.Booster(model_file=os.path.join(out, "model.json"))
        self.assertEqual(bst.feature_names, FEATURES)
        self.assertEqual(bst.num_boosted_rounds(), spec["metadata"]["metrics"]["best_iteration"] + 1)
        p = bst.predict(xgb.DMatrix(x, missing=np.nan, feature_names=FEATURES))
        self.assertAlmostEqual(roc_auc_score(y, p), auc, delta=6e-5)
        self.assertAlmostEqual(spec["metadata"]["metrics"]["valid_auc"], auc, delta=6e-5)
        with open(os.path.join(out, "model.json"), "rb") as f:
            first = f.read()
        # Same input, same seed: the same model bytes (and --force replaces).
        r, _ = run("train_gbm.py", "--features", self.csv, "--out", out, "--rounds", "200",
                   "--early-stopping", "20", "--eta", "0.1")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--force", r.stderr)
        r, _ = run("train_gbm.py", "--features", self.csv, "--out", out, "--rounds", "200",
                   "--early-stopping", "20", "--eta", "0.1", "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "model.json"), "rb") as f:
            self.assertEqual(f.read(), first, "model.json differs between two identical runs")
        print("\ngbm: auc=%.4f logloss=%.4f %.1fs" % (auc, ll, secs), file=sys.stderr)

    def test_rf(self):
        import xgboost as xgb
        from sklearn.metrics import roc_auc_score
        out = self.out("rf")
        r, secs = run("train_rf.py", "--features", self.csv, "--out", out, "--trees", "50")
        self.assertEqual(r.returncode, 0, r.stderr)
        auc, ll, rows, _, _ = valid_line(r.stdout)
        self.assertGreater(auc, 0.7)
        spec = self.check_spec(out, "gbm", "model.json", "train_rf.py", "xgboost_version")
        self.assertEqual(spec["metadata"]["hyperparameters"]["num_parallel_tree"], 50)
        x, y = self.valid_rows()
        bst = xgb.Booster(model_file=os.path.join(out, "model.json"))
        p = bst.predict(xgb.DMatrix(x, missing=np.nan, feature_names=FEATURES))
        self.assertAlmostEqual(roc_auc_score(y, p), auc, delta=6e-5)
        with open(os.path.join(out, "model.json")) as f:
            trees = json.load(f)["learner"]["gradient_booster"]["model"]["trees"]
        self.assertEqual(len(trees), 50)
        print("\nrf: auc=%.4f logloss=%.4f %.1fs" % (auc, ll, secs), file=sys.stderr)

    def check_linear(self, model, name):
        from sklearn.metrics import log_loss, roc_auc_score
        out = self.out(name)
        r, secs = run("train_linear.py", "--features", self.csv, "--out", out, "--model", model)
        self.assertEqual(r.returncode, 0, r.stderr)
        auc, ll, rows, _, _ = valid_line(r.stdout)
        self.assertGreater(auc, 0.7)
        spec = self.check_spec(out, "linear", "linear.json", "train_linear.py", "sklearn_version")
        with open(os.path.join(out, "linear.json")) as f:
            lin = json.load(f)
        self.assertEqual(list(lin), LINEAR_KEYS)
        self.assertEqual(lin["model"], {"logistic": "logistic_regression", "svm": "linear_svm"}[model])
        self.assertEqual(lin["link"], "logistic")
        self.assertEqual(lin["features"], FEATURES)
        for k in ("coefficients", "mean", "scale", "impute"):
            self.assertEqual(len(lin[k]), len(FEATURES), k)
            self.assertTrue(all(math.isfinite(v) for v in lin[k]), k)
        self.assertTrue(all(s > 0 for s in lin["scale"]))
        # The formula the Go loader computes reproduces the printed metrics.
        x, y = self.valid_rows()
        xi = np.where(np.isnan(x), np.array(lin["impute"]), x)
        z = (xi - np.array(lin["mean"])) / np.array(lin["scale"])
        p = sigmoid(lin["intercept"] + z @ np.array(lin["coefficients"]))
        self.assertAlmostEqual(roc_auc_score(y, p), auc, delta=6e-5)
        self.assertAlmostEqual(log_loss(y, p), ll, delta=6e-5)
        print("\n%s: auc=%.4f logloss=%.4f %.1fs" % (name, auc, ll, secs), file=sys.stderr)

    def test_logistic(self):
        self.check_linear("logistic", "lr")

    def test_svm(self):
        self.check_linear("svm", "svm")

    def test_single_cut_splits_by_user(self):
        path = os.path.join(self.tmp, "onecut.csv")
        df = make_csv(path, rows=3000, cuts=1, seed=3)
        df.drop(columns=["cut"]).to_csv(os.path.join(self.tmp, "nocut.csv"), index=False, na_rep="")
        for csv_path in (path, os.path.join(self.tmp, "nocut.csv")):
            out = os.path.join(self.tmp, "repo", "lr_" + os.path.basename(csv_path), "1")
            r, _ = run("train_linear.py", "--features", csv_path, "--out", out, "--valid-frac", "0.25",
                       "--exclude-columns", "price,discount_frac")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("by-user", r.stdout)
            with open(os.path.join(out, "model.yaml")) as f:
                spec = yaml.safe_load(f)
            self.assertEqual(spec["metadata"]["split"], "by-user")
            self.assertNotIn("price", spec["features"])
            self.assertEqual(len(spec["features"]), len(FEATURES) - 2)

    def test_all_missing_feature(self):
        path = os.path.join(self.tmp, "allmissing.csv")
        df = make_csv(path, rows=2000, seed=4)
        df["brand_new"] = np.nan
        df["constant"] = 3.0
        df.to_csv(path, index=False, na_rep="")
        out = os.path.join(self.tmp, "repo", "lr_allmissing", "1")
        r, _ = run("train_linear.py", "--features", path, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "linear.json")) as f:
            lin = json.load(f)
        j = lin["features"].index("brand_new")
        self.assertEqual((lin["mean"][j], lin["scale"][j], lin["impute"][j]), (0.0, 1.0, 0.0))
        j = lin["features"].index("constant")
        self.assertEqual(lin["scale"][j], 1.0)

    def test_errors(self):
        good = pd.read_csv(self.csv, nrows=300, dtype=str, keep_default_na=False)
        cases = []
        path = os.path.join(self.tmp, "nolabel.csv")
        good.drop(columns=["label"]).to_csv(path, index=False)
        cases.append((path, "label"))
        path = os.path.join(self.tmp, "oneclass.csv")
        g = good.copy()
        g["label"] = "0"
        g.to_csv(path, index=False)
        cases.append((path, "both classes"))
        path = os.path.join(self.tmp, "badcell.csv")
        g = good.copy()
        g.loc[41, "price"] = "12,5€"
        g.to_csv(path, index=False)
        cases.append((path, "line 43"))
        cases.append((os.path.join(self.tmp, "missing.csv"), "no such file"))
        path = os.path.join(self.tmp, "truncated.csv")
        with open(self.csv) as f:
            head = f.read(20000)
        with open(path, "w") as f:
            f.write(head[: head.rfind(",")])  # a file cut mid-row
        cases.append((path, "fields, the header has 24"))
        # The checks live in propensity.py, shared by all three: every case
        # through one trainer, two through the others.
        runs = [("train_gbm.py", c) for c in cases]
        runs += [(s, c) for s in ("train_rf.py", "train_linear.py") for c in cases[1:3]]
        for script, (path, want) in runs:
            with self.subTest(script=script, path=os.path.basename(path)):
                out = os.path.join(self.tmp, "repo", "err", "1")
                r, _ = run(script, "--features", path, "--out", out)
                self.assertNotEqual(r.returncode, 0, "%s %s succeeded" % (script, path))
                self.assertIn(path, r.stderr)
                self.assertIn(want, r.stderr)
                self.assertNotIn("Traceback", r.stderr)
                self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--make-csv":
        make_csv(sys.argv[2], rows=int(sys.argv[3]) if len(sys.argv) > 3 else 6000)
        sys.exit(0)
    unittest.main()
