#!/usr/bin/python3
"""Expected values for serving/experiment's statistics, computed with scipy.

Prints one JSON document (inputs and expected outputs) on stdout. The Go
tests check the checked-in copy (testdata/scipy_parity.json, regenerate with
`/usr/bin/python3 testdata/scipy_parity.py > testdata/scipy_parity.json`)
and, when /usr/bin/python3 has scipy, run this script live.

- Wilson interval: scipy.stats.binomtest(k, n).proportion_ci(method='wilson').
- Two-proportion z-test: by formula (pooled SE for z, unpooled SE for the
  difference's interval) with scipy.stats.norm; statsmodels is not used.
- Welch's t-test: scipy.stats.ttest_ind(equal_var=False); the
  Welch-Satterthwaite df by formula; the interval with the t quantile below.
- Mean's t-interval: mean +- t quantile * scipy.stats.sem.
- The t quantile: scipy 1.10's t.ppf (cephes stdtrit) is off by up to ~5e-9
  relative (t.cdf of it misses p by 7e-10 at df=30, p=0.95; at df=1 and 2,
  where the quantile has a closed form, it is off by 2e-11 and 4e-11), which
  is coarser than the 1e-9 the Go tests hold. So t.ppf is polished with two
  Newton steps on scipy's t.cdf and t.pdf, which are accurate to rounding.
- Sample size: the normal-approximation formula with scipy.stats.norm.ppf.
NaN is written as the string "NaN" (JSON has no NaN).
"""
import json
import math
import warnings

import numpy as np
import scipy
from scipy import stats

LEVELS = [0.95, 0.90, 0.99]


def num(x):
    x = float(x)
    return "NaN" if math.isnan(x) else x


def t_ppf(p, df):
    """scipy's t.ppf polished by Newton's method on t.cdf (see the docstring)."""
    q = stats.t.ppf(p, df)
    for _ in range(2):
        q -= (stats.t.cdf(q, df) - p) / stats.t.pdf(q, df)
    return q


def wilson(k, n, level):
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return [num(ci.low), num(ci.high)]


def ztest(x1, n1, x2, n2):
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    z = (p2 - p1) / se_pooled if se_pooled > 0 else float("nan")
    p = 2 * stats.norm.sf(abs(z)) if se_pooled > 0 else float("nan")
    cis = {}
    for level in LEVELS:
        q = stats.norm.ppf(0.5 + level / 2)
        cis[str(level)] = [num(p2 - p1 - q * se), num(p2 - p1 + q * se)]
    return {
        "control": [x1, n1],
        "treatment": [x2, n2],
        "diff": num(p2 - p1),
        "rel_lift": num((p2 - p1) / p1) if p1 > 0 else "NaN",
        "stderr": num(se),
        "z": num(z),
        "p": num(p),
        "ci": cis,
        "wilson_control": {str(l): wilson(x1, n1, l) for l in LEVELS},
        "wilson_treatment": {str(l): wilson(x2, n2, l) for l in LEVELS},
    }


def welch(a, b):
    """a is the control sample, b the treatment."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    res = stats.ttest_ind(b, a, equal_var=False)
    v1, v2 = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (v1 + v2) ** 2 / (v1 ** 2 / (len(a) - 1) + v2 ** 2 / (len(b) - 1))
    se = math.sqrt(v1 + v2)
    diff = b.mean() - a.mean()
    cis, mean_cis = {}, {}
    for level in LEVELS:
        q = t_ppf(0.5 + level / 2, df)
        cis[str(level)] = [num(diff - q * se), num(diff + q * se)]
        mean_cis[str(level)] = []
        for x in (a, b):
            h = t_ppf(0.5 + level / 2, len(x) - 1) * stats.sem(x)
            mean_cis[str(level)].append([num(x.mean() - h), num(x.mean() + h)])
    return {
        "control": a.tolist(),
        "treatment": b.tolist(),
        "mean": [num(a.mean()), num(b.mean())],
        "var": [num(a.var(ddof=1)), num(b.var(ddof=1))],
        "diff": num(diff),
        "rel_lift": num(diff / a.mean()),
        "stderr": num(se),
        "t": num(res.statistic),
        "df": num(df),
        "p": num(res.pvalue),
        "ci": cis,
        "mean_ci": mean_cis,
    }


def sample_size(baseline, lift, alpha, power):
    p1, p2 = baseline, baseline * (1 + lift)
    pbar = (p1 + p2) / 2
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p2 - p1) ** 2
    return {"baseline": baseline, "rel_lift": lift, "alpha": alpha, "power": power, "n": math.ceil(n), "exact": n}


def main():
    # scipy warns on the degenerate cases on purpose in the list (zero
    # variance, nearly constant data); the values are what is checked.
    warnings.simplefilter("ignore")
    proportions = [
        (100, 2000, 130, 2000),  # the A/B of the calibration test: 5% vs 6.5%
        (100, 2000, 100, 2000),  # identical arms
        (0, 10, 3, 10),  # zero successes in control
        (10, 10, 7, 10),  # all successes in control
        (1, 1, 0, 1),  # n = 1
        (3, 17, 9, 23),  # small, unequal arms
        (5000, 1000000, 5210, 1000000),  # large, small rates
        (480, 1000, 520, 1000),  # rates near one half
        (2, 50000, 11, 40000),  # very rare events
        (999, 1000, 990, 1000),  # near one
    ]
    rng = np.random.default_rng(14)
    samples = [
        # revenue-like: mostly zeros, a few lognormal purchases
        (np.where(rng.random(500) < 0.05, rng.lognormal(3, 1, 500), 0.0),
         np.where(rng.random(400) < 0.07, rng.lognormal(3, 1, 400), 0.0)),
        # normal, unequal variances and sizes
        (rng.normal(10, 1, 30), rng.normal(11, 3, 12)),
        # tiny arms (df small)
        (np.array([1.0, 2.0]), np.array([2.0, 4.0, 9.0])),
        # one arm constant (zero variance)
        (np.array([5.0, 5.0, 5.0, 5.0]), rng.normal(6, 1, 8)),
        # large mean, small spread: Welford vs sum of squares
        (1e6 + rng.normal(0, 0.01, 50), 1e6 + 0.005 + rng.normal(0, 0.01, 60)),
        # identical samples
        (np.arange(10.0), np.arange(10.0)),
    ]
    doc = {
        "generator": "scipy %s, numpy %s" % (scipy.__version__, np.__version__),
        "levels": LEVELS,
        "proportions": [ztest(*p) for p in proportions],
        "means": [welch(a, b) for a, b in samples],
        "sample_sizes": [
            sample_size(0.05, 0.30, 0.05, 0.80),
            sample_size(0.05, 0.10, 0.05, 0.80),
            sample_size(0.02, -0.20, 0.01, 0.90),
            sample_size(0.30, 0.05, 0.05, 0.50),
        ],
    }
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
