"""Shared helpers for recserve's purchase-propensity trainers.

train_gbm.py, train_rf.py and train_linear.py all read the features CSV that
`recctl features` writes, split it the same way, report the same metrics and
write a model version directory the same way; this module is that shared part.

Features CSV: a header `user_id,item_id,cut,label,<feature names...>`.
`cut` (optional) is the integer unix-seconds time the row's features were
computed at, `label` is 0/1, every other column is a numeric feature and an
empty cell is a missing value (kept as NaN).

Validation split: with two or more distinct cuts, the rows of the latest cut
are the validation set and the earlier cuts train (no future leaks);
otherwise users are split at random (GroupShuffleSplit, all rows of a user on
one side) with --valid-frac; without a user_id column rows are split at
random.

Version directory: written into `<dir>.tmp-<pid>` and renamed into place, so
a model repository never sees a half-written version; an existing non-empty
directory is only replaced with --force.

Failures that are the input's fault raise TrainError; run() turns them into
one line on stderr naming the file, and exit status 2.
"""
import argparse
import csv
import datetime
import hashlib
import math
import os
import shutil
import sys
import time

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit

ID_COLUMNS = ("user_id", "item_id", "cut", "label")
SPLIT_LATEST_CUT = "latest-cut"
SPLIT_BY_USER = "by-user"
SPLIT_BY_ROW = "by-row"
# The top-level keys models/spec.go accepts (it decodes model.yaml strictly).
SPEC_KEYS = ("kind", "file", "items", "features", "signature", "inputs", "outputs",
             "params", "metadata")
# Cell texts read as missing besides the empty cell (numpy/pandas writers).
MISSING_TEXTS = frozenset(["", "nan", "NaN", "NAN"])


class TrainError(Exception):
    """An error caused by the input or the command line, reported without a traceback."""


class Dataset:
    """The features CSV, parsed.

    x is float64 [rows, features] with NaN for missing cells; y is int 0/1;
    users is the user_id column as strings (None without the column); cuts is
    the int64 cut column (None without it). lines[i] is the 1-based line of
    row i in the file, for messages.
    """

    def __init__(self, path, features, x, y, users, cuts, lines):
        self.path = path
        self.features = features
        self.x = x
        self.y = y
        self.users = users
        self.cuts = cuts
        self.lines = lines

    def __len__(self):
        return len(self.y)


class Split:
    """Row indices of the train and validation parts, and how they were chosen."""

    def __init__(self, kind, train, valid, description, valid_cut=None):
        self.kind = kind
        self.train = train
        self.valid = valid
        self.description = description
        self.valid_cut = valid_cut


def add_common_args(p):
    """Adds the flags every trainer takes to the argparse parser p."""
    p.add_argument("--features", required=True, metavar="FILE.csv",
                   help="features CSV written by `recctl features`")
    p.add_argument("--out", required=True, metavar="VERSION_DIR",
                   help="model version directory to write, e.g. repo/propensity_gbm/1")
    p.add_argument("--valid-frac", type=float, default=0.2,
                   help="fraction of users held out when the CSV has fewer than 2 cuts")
    p.add_argument("--seed", type=int, default=7, help="random seed")
    p.add_argument("--exclude-columns", action="append", default=[], metavar="A,B,...",
                   help="comma-separated columns not to use as features (repeatable)")
    p.add_argument("--force", action="store_true",
                   help="replace VERSION_DIR if it exists and is not empty")


def check_common_args(args):
    """Validates the common flags; raises TrainError."""
    if not 0.0 < args.valid_frac < 1.0:
        raise TrainError("--valid-frac %g: want a fraction strictly between 0 and 1" % args.valid_frac)
    check_out_dir(args.out, args.force)


def parse_exclude(values):
    """Flattens repeated comma-separated --exclude-columns values."""
    out = []
    for v in values:
        out.extend(c.strip() for c in v.split(",") if c.strip())
    return out


def _read_header(path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = f.readline()
    except FileNotFoundError:
        raise TrainError("%s: no such file" % path)
    except IsADirectoryError:
        raise TrainError("%s: is a directory, want a CSV file" % path)
    except UnicodeDecodeError as e:
        raise TrainError("%s: not UTF-8 text: %s" % (path, e))
    except OSError as e:
        raise TrainError("%s: %s" % (path, e.strerror or e))
    if not first.strip():
        raise TrainError("%s: empty file, want a header line" % path)
    return next(csv.reader([first]))


def _numeric(path, name, col, lines):
    """Converts a column of strings (NaN = empty) to float64; raises on text."""
    s = col.str.strip()
    missing = s.isna() | s.isin(MISSING_TEXTS)
    num = pd.to_numeric(s.where(~missing), errors="coerce").astype(np.float64)
    bad = ~missing & num.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise TrainError("%s: line %d: column %s: non-numeric value %r"
                         % (path, lines[i], name, s.iloc[i]))
    return _finite(path, name, num.to_numpy(), lines)


def _finite(path, name, vals, lines):
    """Returns vals (float64, NaN = missing); raises TrainError on +-inf."""
    inf = np.isinf(vals)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise TrainError("%s: line %d: column %s: non-finite value %r (leave the cell empty for a missing value)"
                         % (path, lines[i], name, vals[i]))
    return vals


def _check_widths(path, width):
    """Raises TrainError on a row with a different number of fields than the
    header (pandas pads short rows with missing values, which would hide a
    truncated file)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            r = csv.reader(f)
            for row in r:
                if row and len(row) != width:
                    raise TrainError("%s: line %d: %d fields, the header has %d"
                                     % (path, r.line_num, len(row), width))
    except UnicodeDecodeError as e:
        raise TrainError("%s: not UTF-8 text: %s" % (path, e))
    except csv.Error as e:
        raise TrainError("%s: malformed CSV: %s" % (path, e))


def _read_csv(path, **kw):
    try:
        return pd.read_csv(path, keep_default_na=False, skip_blank_lines=False, encoding="utf-8", **kw)
    except pd.errors.ParserError as e:
        raise TrainError("%s: malformed CSV: %s" % (path, str(e).strip()))
    except UnicodeDecodeError as e:
        raise TrainError("%s: not UTF-8 text: %s" % (path, e))
    except OSError as e:
        raise TrainError("%s: %s" % (path, e.strerror or e))


def read_features(path, exclude=()):
    """Reads and validates the features CSV at path; returns a Dataset."""
    path = os.path.abspath(path)
    header = _read_header(path)
    if any(h == "" for h in header):
        raise TrainError("%s: line 1: empty column name in header" % path)
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise TrainError("%s: line 1: duplicate column(s) %s" % (path, ", ".join(dups)))
    if "label" not in header:
        raise TrainError("%s: no label column (header: %s)" % (path, ",".join(header[:8])
                                                              + (",..." if len(header) > 8 else "")))
    unknown = [c for c in exclude if c not in header]
    if unknown:
        raise TrainError("%s: --exclude-columns names column(s) not in the header: %s"
                         % (path, ", ".join(unknown)))
    skip = set(ID_COLUMNS) | set(exclude)
    features = [h for h in header if h not in skip]
    if not features:
        raise TrainError("%s: no feature columns (every column is one of %s or excluded)"
                         % (path, ",".join(ID_COLUMNS)))
    bad_names = [f for f in features if any(ch in f for ch in "[]<")]
    if bad_names:
        raise TrainError("%s: feature name(s) with '[', ']' or '<' (XGBoost rejects them): %s"
                         % (path, ", ".join(bad_names)))

    _check_widths(path, len(header))
    numeric = features + (["cut"] if "cut" in header else [])
    dtypes = {h: (np.float64 if h in numeric else str) for h in header}
    try:
        # Fast path: the C parser converts the numeric columns; on a bad cell
        # it raises without a line number, so reread as text to find it.
        df = _read_csv(path, dtype=dtypes, na_values=sorted(MISSING_TEXTS))
        text = False
    except TrainError:
        raise
    except (ValueError, TypeError) as e:
        fast_error = e
        df = _read_csv(path, dtype=str, na_values=[""])
        text = True
    # With skip_blank_lines=False, row i is line i+2 (no quoted newlines in
    # a numeric CSV); drop fully blank lines but keep their numbering.
    lines = np.arange(len(df), dtype=np.int64) + 2
    blank = df.isna().all(axis=1).to_numpy()
    if blank.any():
        df = df.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    if len(df) == 0:
        raise TrainError("%s: no data rows" % path)
    if text:
        for name in numeric:
            _numeric(path, name, df[name], lines)
        # _numeric raises on the bad cell; if it found none, report the parser.
        raise TrainError("%s: cannot parse numeric columns: %s" % (path, fast_error))

    label = df["label"].str.strip()
    miss = label.isna() | (label == "")
    if miss.any():
        i = int(np.flatnonzero(miss.to_numpy())[0])
        raise TrainError("%s: line %d: empty label" % (path, lines[i]))
    y_f = pd.to_numeric(label, errors="coerce")
    bad = y_f.isna() | ~y_f.isin([0, 1])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise TrainError("%s: line %d: label %r, want 0 or 1" % (path, lines[i], label.iloc[i]))
    y = y_f.to_numpy().astype(np.int64)
    classes = np.unique(y)
    if len(classes) < 2:
        raise TrainError("%s: label is %d on all %d rows: need both classes (0 and 1) to train"
                         % (path, int(classes[0]), len(y)))

    cuts = None
    if "cut" in header:
        c = _finite(path, "cut", df["cut"].to_numpy(dtype=np.float64), lines)
        nan = np.isnan(c)
        if nan.any():
            i = int(np.flatnonzero(nan)[0])
            raise TrainError("%s: line %d: empty cut" % (path, lines[i]))
        if np.any(c != np.round(c)):
            i = int(np.flatnonzero(c != np.round(c))[0])
            raise TrainError("%s: line %d: cut %r is not an integer" % (path, lines[i], df["cut"].iloc[i]))
        cuts = c.astype(np.int64)
    users = None
    if "user_id" in header:
        users = df["user_id"].fillna("").str.strip().to_numpy(dtype=object)

    x = np.ascontiguousarray(df[features].to_numpy(dtype=np.float64))
    for j, name in enumerate(features):
        _finite(path, name, x[:, j], lines)
    return Dataset(path, features, x, y, users, cuts, lines)


def split(ds, valid_frac, seed):
    """Chooses the validation rows of ds; raises TrainError if a side lacks a class."""
    n = len(ds)
    if ds.cuts is not None and len(np.unique(ds.cuts)) >= 2:
        latest = int(ds.cuts.max())
        valid = np.flatnonzero(ds.cuts == latest)
        train = np.flatnonzero(ds.cuts != latest)
        ncuts = len(np.unique(ds.cuts))
        sp = Split(SPLIT_LATEST_CUT, train, valid,
                   "latest-cut: validating on cut %d (%s), training on the %d earlier cut(s)"
                   % (latest, format_time(latest), ncuts - 1), valid_cut=latest)
    elif ds.users is not None:
        groups = ds.users
        if len(np.unique(groups)) < 2:
            raise TrainError("%s: only one user and one cut: cannot hold out validation users" % ds.path)
        gss = GroupShuffleSplit(n_splits=1, test_size=valid_frac, random_state=seed)
        train, valid = next(gss.split(np.zeros(n), ds.y, groups))
        why = "one cut" if ds.cuts is not None else "no cut column"
        sp = Split(SPLIT_BY_USER, np.sort(train), np.sort(valid),
                   "by-user: %s, holding out %.0f%% of users (seed %d)" % (why, 100 * valid_frac, seed))
    else:
        ss = ShuffleSplit(n_splits=1, test_size=valid_frac, random_state=seed)
        train, valid = next(ss.split(np.zeros(n)))
        sp = Split(SPLIT_BY_ROW, np.sort(train), np.sort(valid),
                   "by-row: no user_id or cut column, holding out %.0f%% of rows (seed %d)"
                   % (100 * valid_frac, seed))
    for name, idx in (("train", sp.train), ("validation", sp.valid)):
        if len(idx) == 0:
            raise TrainError("%s: %s split leaves no %s rows" % (ds.path, sp.kind, name))
        cls = np.unique(ds.y[idx])
        if len(cls) < 2:
            raise TrainError("%s: %s split: the %s rows (%d) all have label %d; need both classes"
                             % (ds.path, sp.kind, name, len(idx), int(cls[0])))
    return sp


def group_subsplit(ds, idx, frac, seed):
    """Splits the rows idx of ds in two (by user when possible); returns (a, b) with b ~ frac."""
    if ds.users is not None and len(np.unique(ds.users[idx])) >= 2:
        s = GroupShuffleSplit(n_splits=1, test_size=frac, random_state=seed)
        a, b = next(s.split(np.zeros(len(idx)), ds.y[idx], ds.users[idx]))
    else:
        s = ShuffleSplit(n_splits=1, test_size=frac, random_state=seed)
        a, b = next(s.split(np.zeros(len(idx))))
    return idx[np.sort(a)], idx[np.sort(b)]


def metrics(y, p):
    """AUC and log loss of probabilities p for labels y, as Python floats."""
    p = np.asarray(p, dtype=np.float64)
    return float(roc_auc_score(y, p)), float(log_loss(y, p, labels=[0, 1]))


def report(ds, sp, p_valid, extra=None):
    """Prints the metrics line and returns the metrics dict for model.yaml.

    The line reads `valid auc=0.8123 logloss=0.3456 rows=12345 positives=0.201
    train_rows=N train_positives=0.199`.
    """
    yv, yt = ds.y[sp.valid], ds.y[sp.train]
    auc, ll = metrics(yv, p_valid)
    print("valid auc=%.4f logloss=%.4f rows=%d positives=%.3f train_rows=%d train_positives=%.3f"
          % (auc, ll, len(yv), yv.mean(), len(yt), yt.mean()))
    sys.stdout.flush()
    m = {
        "valid_auc": round(auc, 6),
        "valid_logloss": round(ll, 6),
        "train_rows": int(len(yt)),
        "valid_rows": int(len(yv)),
        "train_positive_rate": round(float(yt.mean()), 6),
        "valid_positive_rate": round(float(yv.mean()), 6),
    }
    if extra:
        m.update(extra)
    return m


def log(msg):
    print(msg)
    sys.stdout.flush()


def format_time(unix):
    return datetime.datetime.fromtimestamp(unix, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def metadata(trainer, ds, sp, metrics_, hyper, versions, exclude=()):
    """The metadata mapping of model.yaml (plain Python types only)."""
    md = {
        "trainer": trainer,
        "trained_at": now_rfc3339(),
        "dataset": ds.path,
        "dataset_sha256": sha256_file(ds.path),
    }
    md.update(versions)
    md["split"] = sp.kind
    if sp.valid_cut is not None:
        md["valid_cut"] = int(sp.valid_cut)
    if exclude:
        md["excluded_columns"] = list(exclude)
    md["metrics"] = metrics_
    md["hyperparameters"] = hyper
    return md


def spec_yaml(spec):
    """Serialises a model.yaml mapping; only the keys models/spec.go accepts."""
    bad = [k for k in spec if k not in SPEC_KEYS]
    if bad:
        raise AssertionError("model.yaml keys not allowed by models/spec.go: %s" % bad)
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False, allow_unicode=True)


def check_out_dir(out, force):
    """Refuses an existing non-empty VERSION_DIR unless force; raises TrainError."""
    out = os.path.abspath(out)
    if os.path.lexists(out):
        if not os.path.isdir(out) or os.path.islink(out):
            raise TrainError("%s: exists and is not a directory" % out)
        if os.listdir(out) and not force:
            raise TrainError("%s: exists and is not empty (use --force to replace it)" % out)


def write_version(out, files, force):
    """Writes files {name: bytes} as the version directory out, atomically.

    The files go to `out.tmp-<pid>` (fsynced) which is then renamed to out. An
    existing out is replaced only if empty or with force: it is first moved
    aside to `out.old-<pid>` and removed after the rename.
    """
    out = os.path.abspath(out)
    check_out_dir(out, force)
    parent = os.path.dirname(out)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise TrainError("%s: cannot create directory: %s" % (parent, e.strerror or e))
    tmp = "%s.tmp-%d" % (out, os.getpid())
    old = "%s.old-%d" % (out, os.getpid())
    try:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp)
        os.mkdir(tmp)
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        _fsync_dir(tmp)
        moved = False
        if os.path.lexists(out):
            os.rename(out, old)
            moved = True
        try:
            os.rename(tmp, out)
        except OSError:
            if moved:
                os.rename(old, out)
            raise
        _fsync_dir(parent)
        if moved:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TrainError("%s: cannot write version directory: %s" % (out, e.strerror or e))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def run(main, prog):
    """Runs main(), turning TrainError into `prog: error: msg` and exit status 2."""
    start = time.monotonic()
    try:
        main()
    except TrainError as e:
        print("%s: error: %s" % (prog, e), file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("%s: interrupted" % prog, file=sys.stderr)
        sys.exit(130)
    log("done in %.1fs" % (time.monotonic() - start))


def finite_list(values, what):
    """Converts an array to a list of Python floats, refusing NaN and inf."""
    out = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
    bad = [i for i, v in enumerate(out) if not math.isfinite(v)]
    if bad:
        raise TrainError("%s: non-finite value at index %d" % (what, bad[0]))
    return out


def parser(description):
    return argparse.ArgumentParser(description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def train_xgboost(args, trainer, kind_params, rounds, early_stopping):
    """Trains an XGBoost binary:logistic model and writes its version directory.

    kind_params are the booster parameters of the trainer (tree shape,
    sampling, forest size); this adds the objective, tree method, seed,
    threads and base_score (the train positive rate). With early_stopping > 0
    the validation log loss stops boosting, and only the trees up to the best
    iteration are saved, so the saved model predicts what was evaluated.
    """
    import xgboost as xgb

    check_common_args(args)
    if args.nthread < 1:
        raise TrainError("--nthread %d: want at least 1" % args.nthread)
    exclude = parse_exclude(args.exclude_columns)
    t0 = time.monotonic()
    ds = read_features(args.features, exclude)
    log("read %s: %d rows, %d features (%.1fs)" % (ds.path, len(ds), len(ds.features), time.monotonic() - t0))
    sp = split(ds, args.valid_frac, args.seed)
    log("split " + sp.description)

    yt = ds.y[sp.train]
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["auc", "logloss"],  # the last one (logloss) drives early stopping
        "tree_method": "hist",
        "base_score": float(yt.mean()),
        "seed": args.seed,
        "nthread": args.nthread,
    }
    params.update(kind_params)
    dtrain = xgb.DMatrix(ds.x[sp.train], label=yt, missing=np.nan,
                         feature_names=ds.features, nthread=args.nthread)
    dvalid = xgb.DMatrix(ds.x[sp.valid], label=ds.y[sp.valid], missing=np.nan,
                         feature_names=ds.features, nthread=args.nthread)
    t0 = time.monotonic()
    kw = {}
    if early_stopping > 0:
        kw["early_stopping_rounds"] = early_stopping
    bst = xgb.train(params, dtrain, num_boost_round=rounds, evals=[(dvalid, "valid")],
                    verbose_eval=False, **kw)
    train_seconds = time.monotonic() - t0
    boosted = bst.num_boosted_rounds()
    best = bst.best_iteration if early_stopping > 0 else boosted - 1
    if best + 1 < boosted:
        bst = bst[: best + 1]
    for attr in ("best_iteration", "best_ntree_limit", "best_score"):
        bst.set_attr(**{attr: None})
    log("trained %d round(s) in %.1fs, keeping %d (best iteration %d)"
        % (boosted, train_seconds, best + 1, best))

    p_valid = bst.predict(xgb.DMatrix(ds.x[sp.valid], missing=np.nan, feature_names=ds.features,
                                      nthread=args.nthread))
    p_train = bst.predict(dtrain)
    train_auc, train_ll = metrics(yt, p_train)
    m = report(ds, sp, p_valid, {
        "train_auc": round(train_auc, 6),
        "train_logloss": round(train_ll, 6),
        "best_iteration": int(best),
        "rounds_trained": int(boosted),
        "train_seconds": round(train_seconds, 2),
    })
    hyper = {k: v for k, v in params.items() if k not in ("eval_metric", "base_score")}
    hyper["base_score"] = round(params["base_score"], 6)
    hyper["num_boost_round"] = int(rounds)
    hyper["early_stopping_rounds"] = int(early_stopping)
    hyper["valid_frac"] = args.valid_frac
    spec = {
        "kind": "gbm",
        "file": "model.json",
        "features": list(ds.features),
        "params": {"format": "xgboost_json"},
        "metadata": metadata(trainer, ds, sp, m, hyper, {"xgboost_version": xgb.__version__}, exclude),
    }
    model = bytes(bst.save_raw(raw_format="json"))  # the bytes Booster.save_model("model.json") writes
    out = write_version(args.out, {"model.json": model, "model.yaml": spec_yaml(spec).encode()}, args.force)
    log("wrote %s" % out)
