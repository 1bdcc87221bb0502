"""Shared parts of recserve's neural recommender trainers (PyTorch -> ONNX).

train_ae.py (Mult-DAE, signature user_vector), train_cnn.py (Caser,
signature sequence) and train_rnn.py (GRU4Rec, signature sequence) all read a
canonical dataset directory, build the item vocabulary and the per-user
inputs the same way, validate and early-stop the same way, and write a model
version directory the same way; this module is that shared part.

Dataset directory: interactions.csv with a header naming at least user_id,
item_id, event and timestamp (value and session_id optional; column order
free, names matched case-insensitively). Events are view, cart, purchase or
rating (case-insensitive); an empty value means 1 except for ratings, which
need one; timestamps are Unix seconds or RFC3339. Rows are ordered by
timestamp, ties kept in file order (a stable sort), which is the order the
Go store and `recctl split` use.

Vocabulary (items.txt): every distinct item id of interactions.csv, sorted
by id (byte order); line j (from 0) is the item with index j.

Inputs, exactly as the Go side must build them from a user's history:
  user_vector (AE): float32 [N]; entry j = sum over the user's interactions
    with vocabulary item j of weight(event), where weight is view 1, cart 3,
    purchase 5 and rating 1 x value (models.EventWeights.Of); interactions
    with items outside the vocabulary are skipped. No normalisation outside
    the graph: the graph binarises (or log1p-compresses, see
    params.graph_normalize) and L2-normalises itself.
    An all-zero row (no history) is valid.
  sequence (CNN, RNN): int64 [L]; take the user's interactions in time order
    (ties in file order), keep the events listed in params.events, map each
    item to its vocabulary line j and then to index j+1 (0 is padding),
    skipping items outside the vocabulary, collapse consecutive duplicates
    (a b b a -> a b a) when params.dedupe_consecutive, keep the last
    params.max_len indices and left-pad with 0 to max_len. An all-zero row
    (no history) is valid.
Outputs: float32 [B, N] logits, column j = vocabulary line j; higher is better.

Version directory (written atomically, see propensity.write_version):
  model.onnx, items.txt, model.yaml (params: the input rule's keys, and
  dynamic batching: max_batch_size and max_queue_delay_us from
  --max-batch-size and --max-queue-delay-us), parity.json ({"inputs": [...],
  "outputs": [...]}: a batch of real users' inputs and PyTorch's outputs for
  them), parity_users.json (the user id of each parity row, null for the
  synthetic empty rows).

Validation: the AE holds out --valid-holdout of the items of --valid-users
of the users (their other items stay in training, as the fold-in input); the
sequence models hold out every user's last item (leave-last-out) and train
on the rest. Both early-stop on NDCG@10 (ties: Recall@20), ranking every
item the user has in the validation input out of the list, as the server
never recommends seen items, and keep the best epoch's weights.

With --test DIR (a `recctl split` test half whose train half is --data) the
trainer also reports test metrics: "all" = every distinct test item the user
had not touched in train is relevant; "next" = only the item of the user's
first test event whose item is not in train (the next new item).

Failures that are the input's fault raise TrainError; run() turns them into
one line on stderr naming the file, and exit status 2.
"""
import copy
import io
import json
import math
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import propensity  # noqa: E402
from propensity import TrainError, log, now_rfc3339, sha256_file, spec_yaml  # noqa: E402,F401

INTERACTIONS = "interactions.csv"
ITEMS_FILE = "items.txt"
MODEL_FILE = "model.onnx"
EVENTS = ("view", "cart", "purchase", "rating")
DEFAULT_WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0, "rating": 1.0}
OPSET = 13
PARITY_USERS = 12
# Dynamic batching written to model.yaml (params.max_batch_size,
# params.max_queue_delay_us; models/onnx): the server runs up to
# MAX_BATCH_SIZE concurrent requests' rows in one onnxruntime Run. A queue
# delay of 0 batches only the rows that queued while a Run was busy: measured
# on the demo through gRPC (scripts/queuedelaybench.sh, docs/PERFORMANCE.md),
# it keeps a lone client's latency (rnn p50 0.93 ms, against 2.7 ms with
# 500 us) and is the fastest at 8 clients; 500 us wins only at 50.
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_QUEUE_DELAY_US = 0
# The bounds the Go onnx kind accepts (models/onnx/signature.go).
MAX_BATCH_SIZE_LIMIT = 1 << 16
MAX_QUEUE_DELAY_US_LIMIT = 10_000_000


# ---------------------------------------------------------------- data


class Interactions:
    """interactions.csv, parsed and stably sorted by timestamp.

    users, items: object arrays of ids; events: object array of canonical
    event names; values: float64; ts: int64; path: the absolute file path.
    """

    def __init__(self, path, users, items, events, values, ts):
        self.path = path
        self.users = users
        self.items = items
        self.events = events
        self.values = values
        self.ts = ts

    def __len__(self):
        return len(self.users)


def _parse_times(path, col, lines):
    s = col.str.strip()
    num = pd.to_numeric(s, errors="coerce")
    out = np.zeros(len(s), dtype=np.int64)
    ok = num.notna().to_numpy() & np.isfinite(num.to_numpy(dtype=np.float64, na_value=np.nan))
    nv = num.to_numpy(dtype=np.float64, na_value=np.nan)
    intish = ok & (nv == np.round(nv))
    out[intish] = nv[intish].astype(np.int64)
    for i in np.flatnonzero(~intish):
        text = s.iloc[i]
        if text == "":
            raise TrainError("%s: line %d: empty timestamp" % (path, lines[i]))
        try:
            t = pd.Timestamp(text)
            if t.tzinfo is None or "T" not in text.upper():
                raise ValueError
            out[i] = int(t.timestamp())
        except (ValueError, TypeError):
            raise TrainError("%s: line %d: bad timestamp %r: want Unix seconds or RFC3339"
                             % (path, lines[i], text))
    return out


def read_interactions(data_dir):
    """Reads DATA_DIR/interactions.csv; returns Interactions or raises TrainError."""
    data_dir = os.path.abspath(data_dir)
    if not os.path.exists(data_dir):
        raise TrainError("%s: no such directory (want a dataset directory with %s)" % (data_dir, INTERACTIONS))
    if not os.path.isdir(data_dir):
        raise TrainError("%s: not a directory (want a dataset directory with %s)" % (data_dir, INTERACTIONS))
    path = os.path.join(data_dir, INTERACTIONS)
    if not os.path.exists(path):
        raise TrainError("%s: no such file" % path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False,
                         encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise TrainError("%s: empty file, want a header line and interactions" % path)
    except pd.errors.ParserError as e:
        raise TrainError("%s: malformed CSV: %s" % (path, str(e).strip()))
    except UnicodeDecodeError as e:
        raise TrainError("%s: not UTF-8 text: %s" % (path, e))
    except OSError as e:
        raise TrainError("%s: %s" % (path, e.strerror or e))
    cols = {}
    for c in df.columns:
        key = str(c).strip().lower()
        if key in cols:
            raise TrainError("%s: line 1: duplicate column %s" % (path, key))
        cols[key] = c
    missing = [c for c in ("user_id", "item_id", "event", "timestamp") if c not in cols]
    if missing:
        raise TrainError("%s: line 1: missing column(s) %s (header: %s)"
                         % (path, ", ".join(missing), ",".join(map(str, df.columns))))
    lines = np.arange(len(df), dtype=np.int64) + 2
    blank = (df.apply(lambda s: s.str.strip()) == "").all(axis=1).to_numpy() if len(df) else np.zeros(0, bool)
    if blank.any():
        df = df.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    if len(df) == 0:
        raise TrainError("%s: no interactions (only a header)" % path)

    users = df[cols["user_id"]].str.strip()
    items = df[cols["item_id"]].str.strip()
    for name, s in (("user_id", users), ("item_id", items)):
        bad = (s == "").to_numpy()
        if bad.any():
            raise TrainError("%s: line %d: empty %s" % (path, lines[np.flatnonzero(bad)[0]], name))
    events = df[cols["event"]].str.strip().str.lower()
    bad = ~events.isin(EVENTS).to_numpy()
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise TrainError("%s: line %d: unknown event %r (want view, cart, purchase or rating)"
                         % (path, lines[i], df[cols["event"]].iloc[i]))
    values = np.ones(len(df), dtype=np.float64)
    if "value" in cols:
        vs = df[cols["value"]].str.strip()
        empty = (vs == "").to_numpy()
        rating_empty = empty & (events == "rating").to_numpy()
        if rating_empty.any():
            raise TrainError("%s: line %d: rating event with empty value"
                             % (path, lines[np.flatnonzero(rating_empty)[0]]))
        num = pd.to_numeric(vs.where(~empty), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        badv = ~empty & ~np.isfinite(num)
        if badv.any():
            i = np.flatnonzero(badv)[0]
            raise TrainError("%s: line %d: bad value %r: want a finite number" % (path, lines[i], vs.iloc[i]))
        values = np.where(empty, 1.0, num)
    elif (events == "rating").any():
        i = np.flatnonzero((events == "rating").to_numpy())[0]
        raise TrainError("%s: line %d: rating event but no value column" % (path, lines[i]))
    ts = _parse_times(path, df[cols["timestamp"]], lines)
    order = np.argsort(ts, kind="stable")
    return Interactions(path,
                        users.to_numpy(dtype=object)[order],
                        items.to_numpy(dtype=object)[order],
                        events.to_numpy(dtype=object)[order],
                        values[order], ts[order])


def build_vocab(inter):
    """The vocabulary: every distinct item id, sorted by id (byte order)."""
    ids = sorted(set(inter.items.tolist()), key=lambda s: s.encode("utf-8"))
    for i in ids:
        if any(ch in i for ch in "\r\n"):
            raise TrainError("%s: item id %r contains a line break" % (inter.path, i))
    return ids


def vocab_bytes(ids):
    return ("".join(i + "\n" for i in ids)).encode("utf-8")


def parse_events(spec, inter):
    """Resolves --events: a comma list of event names, or auto (view,cart,purchase
    when the data has any of them, else rating)."""
    spec = spec.strip().lower()
    if spec == "auto":
        present = set(np.unique(inter.events).tolist())
        ev = [e for e in ("view", "cart", "purchase") if e in present] and ["view", "cart", "purchase"]
        return ev or ["rating"]
    out = []
    for p in spec.split(","):
        p = p.strip()
        if p not in EVENTS:
            raise TrainError("--events %r: unknown event %r (want a comma list of view, cart, purchase, rating, or auto)"
                             % (spec, p))
        if p not in out:
            out.append(p)
    if not out:
        raise TrainError("--events is empty")
    return [e for e in EVENTS if e in out]


def user_sequences(inter, index, events, dedupe=True):
    """Per-user item index sequences (1-based, 0 = padding) in time order.

    index maps item id -> vocabulary line; items not in it are skipped.
    Returns {user_id: np.int64 array}, users in sorted order.
    """
    keep = np.isin(inter.events, np.array(events, dtype=object))
    users = inter.users[keep]
    idx = np.fromiter((index.get(i, -1) for i in inter.items[keep]), dtype=np.int64, count=int(keep.sum())) + 1
    ok = idx > 0
    users, idx = users[ok], idx[ok]
    order = np.argsort(users, kind="stable")  # stable: time order within a user
    users, idx = users[order], idx[order]
    out = {}
    if len(users) == 0:
        return out
    bounds = np.flatnonzero(users[1:] != users[:-1]) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(users)]])
    for s, e in zip(starts, ends):
        seq = idx[s:e]
        if dedupe and len(seq) > 1:
            seq = seq[np.concatenate([[True], seq[1:] != seq[:-1]])]
        out[users[s]] = seq
    return out


def pad_left(seq, max_len):
    """The last max_len entries of seq, left-padded with 0 to max_len."""
    row = np.zeros(max_len, dtype=np.int64)
    tail = seq[-max_len:] if max_len > 0 else seq[:0]
    if len(tail):
        row[max_len - len(tail):] = tail
    return row


def user_weights(inter, index, weights=None):
    """Per-user weighted histories: {user_id: (item_lines int64, weights float32)}.

    weight(event) per DEFAULT_WEIGHTS (rating: weight x value), summed per
    (user, item); items not in index are skipped.
    """
    w = weights or DEFAULT_WEIGHTS
    ev_w = np.array([w[e] for e in inter.events], dtype=np.float64)
    ev_w = np.where(inter.events == "rating", ev_w * inter.values, ev_w)
    idx = np.fromiter((index.get(i, -1) for i in inter.items), dtype=np.int64, count=len(inter))
    ok = idx >= 0
    df = pd.DataFrame({"u": inter.users[ok], "i": idx[ok], "w": ev_w[ok]})
    g = df.groupby(["u", "i"], sort=True)["w"].sum().reset_index()
    out = {}
    u = g["u"].to_numpy(dtype=object)
    if len(u) == 0:
        return out
    bounds = np.flatnonzero(u[1:] != u[:-1]) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(u)]])
    ii = g["i"].to_numpy(dtype=np.int64)
    ww = g["w"].to_numpy(dtype=np.float64)
    for s, e in zip(starts, ends):
        out[u[s]] = (ii[s:e], ww[s:e].astype(np.float32))
    return out


def weights_param(weights=None):
    w = weights or DEFAULT_WEIGHTS
    return ",".join("%s:%g" % (e, w[e]) for e in EVENTS)


def user_item_sets(inter, index):
    """{user: set of vocabulary lines the user touched (any event)}."""
    out = {}
    for u, i in zip(inter.users, inter.items):
        j = index.get(i)
        s = out.setdefault(u, set())
        if j is not None:
            s.add(j)
    return out


# ---------------------------------------------------------------- metrics


def rank_metrics(scores, exclude, relevant, k=10, k2=20):
    """HR@k, NDCG@k and Recall@k2 summed over rows (caller divides).

    scores: torch float tensor [B, N] (modified: excluded items set to -inf);
    exclude: list of index iterables (seen items); relevant: list of sets of
    relevant vocabulary lines; n_relevant: optional |relevant| counts that
    include items outside the vocabulary (for recall and ideal DCG).
    """
    import torch
    for r, ex in enumerate(exclude):
        if len(ex):
            scores[r, torch.as_tensor(np.fromiter(ex, dtype=np.int64))] = -math.inf
    top = torch.topk(scores, min(k2, scores.shape[1]), dim=1).indices.numpy()
    hr = ndcg = rec = 0.0
    for r, rel in enumerate(relevant):
        nrel = rel[1] if isinstance(rel, tuple) else len(rel)
        rel = rel[0] if isinstance(rel, tuple) else rel
        if nrel == 0:
            continue
        hits = [p for p, j in enumerate(top[r, :k]) if j in rel]
        if hits:
            hr += 1
        dcg = sum(1.0 / math.log2(p + 2) for p in hits)
        idcg = sum(1.0 / math.log2(p + 2) for p in range(min(nrel, k)))
        ndcg += dcg / idcg
        rec += sum(1 for j in top[r, :k2] if j in rel) / nrel
    return hr, ndcg, rec


class Metrics:
    """Accumulates rank_metrics over batches."""

    def __init__(self):
        self.n = 0
        self.hr = self.ndcg = self.rec = 0.0

    def add(self, scores, exclude, relevant):
        h, n, r = rank_metrics(scores, exclude, relevant)
        self.hr += h
        self.ndcg += n
        self.rec += r
        self.n += sum(1 for rel in relevant if (rel[1] if isinstance(rel, tuple) else len(rel)) > 0)

    def result(self):
        n = max(self.n, 1)
        return {"ndcg10": self.ndcg / n, "hr10": self.hr / n, "recall20": self.rec / n, "users": self.n}


def fmt_metrics(m):
    return "ndcg@10=%.4f hr@10=%.4f recall@20=%.4f users=%d" % (m["ndcg10"], m["hr10"], m["recall20"], m["users"])


# ---------------------------------------------------------------- training loop


def setup_torch(seed, threads):
    import torch
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(max(1, threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def fit(model, train_epoch, validate, epochs, patience, label):
    """Runs train_epoch(epoch) -> loss and validate() -> metrics dict for up to
    epochs epochs, stopping after patience epochs without a better NDCG@10
    (ties broken by Recall@20); restores the best weights. Returns
    (best_metrics, best_epoch, epochs_run, seconds)."""
    best, best_key, best_epoch, best_state = None, None, 0, None
    start = time.monotonic()
    run = 0
    for epoch in range(1, epochs + 1):
        t0 = time.monotonic()
        model.train()
        loss = train_epoch(epoch)
        model.eval()
        m = validate()
        run = epoch
        key = (round(m["ndcg10"], 6), round(m["recall20"], 6))
        mark = ""
        if best_key is None or key > best_key:
            best, best_key, best_epoch = m, key, epoch
            best_state = copy.deepcopy(model.state_dict())
            mark = " *"
        log("%s epoch %d loss=%.4f valid %s (%.1fs)%s"
            % (label, epoch, loss, fmt_metrics(m), time.monotonic() - t0, mark))
        if patience > 0 and epoch - best_epoch >= patience:
            log("%s: no better validation NDCG@10 for %d epochs, stopping" % (label, patience))
            break
    model.load_state_dict(best_state)
    model.eval()
    return best, best_epoch, run, time.monotonic() - start


# ---------------------------------------------------------------- export


def export_onnx(model, example, input_name, output_name):
    """Exports model (eval mode) to ONNX bytes with a dynamic batch axis and
    checks it with onnx.checker."""
    import onnx
    import torch
    model.eval()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # torch 1.13 warns about GRU batch sizes (the exported GRU takes any
        # batch; parity.json is a batch) and missing shape inference of
        # constants; neither applies to these graphs.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buf, input_names=[input_name], output_names=[output_name],
                          dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True)
    data = buf.getvalue()
    m = onnx.load_from_string(data)
    onnx.checker.check_model(m)
    return data


def parity_json(model, inputs, dtype):
    """parity.json bytes: inputs (a batch) and the model's float32 outputs."""
    import torch
    x = torch.as_tensor(np.asarray(inputs), dtype=dtype)
    with torch.no_grad():
        y = model(x).numpy().astype(np.float32)
    if not np.all(np.isfinite(y)):
        raise TrainError("model produced non-finite scores for the parity inputs")
    if dtype == torch.int64:
        ins = [[int(v) for v in row] for row in np.asarray(inputs)]
    else:
        ins = [[float(np.float32(v)) for v in row] for row in np.asarray(inputs)]
    # float(np.float32) is exact; repr prints the shortest string that
    # round-trips, so Go's ParseFloat(..., 32) gets the same float32 back.
    outs = [[float(v) for v in row] for row in y]
    return json.dumps({"inputs": ins, "outputs": outs}, separators=(",", ":")).encode()


def parity_users(users, seed, n=PARITY_USERS):
    """n users chosen deterministically (seeded) from the sorted list users."""
    users = sorted(users)
    rng = np.random.default_rng(seed + 1000)
    pick = rng.choice(len(users), size=min(n, len(users)), replace=False)
    return [users[i] for i in sorted(pick)]


def metadata(trainer, inter, metrics, hyper):
    import torch
    import onnx
    return {
        "trainer": trainer,
        "trained_at": now_rfc3339(),
        "dataset": os.path.dirname(inter.path),
        "dataset_sha256": sha256_file(inter.path),
        "torch_version": str(torch.__version__),
        "onnx_version": str(onnx.__version__),
        "opset": OPSET,
        "metrics": metrics,
        "hyperparameters": hyper,
    }


def write_version(args, spec, files):
    files = dict(files)
    files["model.yaml"] = spec_yaml(spec).encode()
    out = propensity.write_version(args.out, files, args.force)
    log("wrote %s" % out)
    return out


# ---------------------------------------------------------------- CLI


def add_common_args(p, max_len=None):
    p.add_argument("--data", required=True, metavar="DATASET_DIR",
                   help="dataset directory with interactions.csv (e.g. the train half of `recctl split`)")
    p.add_argument("--out", required=True, metavar="VERSION_DIR",
                   help="model version directory to write, e.g. repo/rnn/1")
    p.add_argument("--epochs", type=int, default=30, help="maximum epochs")
    p.add_argument("--patience", type=int, default=3,
                   help="stop after this many epochs without a better validation NDCG@10 (0: off)")
    p.add_argument("--seed", type=int, default=7, help="random seed")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is fastest for these small models on a shared machine)")
    p.add_argument("--batch-size", type=int, default=256, help="training batch size")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--test", metavar="TEST_DIR",
                   help="also report metrics on this test half (from the same `recctl split` as --data)")
    p.add_argument("--force", action="store_true",
                   help="replace VERSION_DIR if it exists and is not empty")
    p.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                   help="model.yaml params.max_batch_size: the server runs up to this many concurrent "
                        "requests' rows in one onnxruntime Run (dynamic batching); 0 or 1: off, no "
                        "batching keys written")
    p.add_argument("--max-queue-delay-us", type=int, default=DEFAULT_MAX_QUEUE_DELAY_US,
                   help="model.yaml params.max_queue_delay_us: how long a request may wait for a batch "
                        "to fill (with batching on; 0: batch only what queued while a Run was busy)")
    if max_len is not None:
        p.add_argument("--max-len", type=int, default=max_len,
                       help="sequence length L of the model input (the last L items)")
        p.add_argument("--events", default="auto",
                       help="events forming the sequence: comma list of view,cart,purchase,rating, or auto "
                            "(view,cart,purchase when present, else rating)")
        p.add_argument("--no-dedupe", action="store_true",
                       help="keep consecutive repeats of an item in the sequence")


def check_common_args(args):
    if args.epochs < 1:
        raise TrainError("--epochs %d: want at least 1" % args.epochs)
    if args.patience < 0:
        raise TrainError("--patience %d: want 0 (off) or more" % args.patience)
    if args.batch_size < 1:
        raise TrainError("--batch-size %d: want at least 1" % args.batch_size)
    if not args.lr > 0:
        raise TrainError("--lr %g: want a positive learning rate" % args.lr)
    if args.threads < 1:
        raise TrainError("--threads %d: want at least 1" % args.threads)
    if getattr(args, "max_len", 1) < 1:
        raise TrainError("--max-len %d: want at least 1" % args.max_len)
    if not 0 <= args.max_batch_size <= MAX_BATCH_SIZE_LIMIT:
        raise TrainError("--max-batch-size %d: want 0 to %d (0 or 1: no batching)"
                         % (args.max_batch_size, MAX_BATCH_SIZE_LIMIT))
    if not 0 <= args.max_queue_delay_us <= MAX_QUEUE_DELAY_US_LIMIT:
        raise TrainError("--max-queue-delay-us %d: want 0 to %d"
                         % (args.max_queue_delay_us, MAX_QUEUE_DELAY_US_LIMIT))
    propensity.check_out_dir(args.out, args.force)
    if args.test and os.path.abspath(args.test) == os.path.abspath(args.data):
        raise TrainError("--test %s: the same directory as --data" % args.test)


parser = propensity.parser
run = propensity.run


# ---------------------------------------------------------------- sequence models


def batching_params(args):
    """The dynamic-batching keys of model.yaml params: max_batch_size and
    max_queue_delay_us when --max-batch-size turns batching on (> 1), none
    otherwise (the server then runs every request on its own)."""
    if args.max_batch_size <= 1:
        return {}
    return {"max_batch_size": int(args.max_batch_size), "max_queue_delay_us": int(args.max_queue_delay_us)}


def sequence_params(args, events):
    """The model.yaml params of a sequence model: exactly the keys the Go onnx
    kind reads (it rejects unknown keys, so a typo cannot silently change how
    inputs are built). The rule in words goes to metadata (SEQUENCE_RULES)."""
    params = {
        "max_len": int(args.max_len),
        "events": ",".join(events),
        "dedupe_consecutive": not args.no_dedupe,
    }
    params.update(batching_params(args))
    return params


SEQUENCE_RULES = ("history in time order (ties: file order), then session items; keep params.events; "
                  "map the item on vocabulary line j to index j+1, skipping unknown items; collapse "
                  "consecutive duplicates if dedupe_consecutive; keep the last max_len; left-pad with 0")


class SequenceData:
    """Everything a sequence trainer needs, built from --data."""

    def __init__(self, args):
        t0 = time.monotonic()
        self.inter = read_interactions(args.data)
        self.vocab = build_vocab(self.inter)
        self.index = {i: j for j, i in enumerate(self.vocab)}
        self.events = parse_events(args.events, self.inter)
        self.dedupe = not args.no_dedupe
        self.seqs = user_sequences(self.inter, self.index, self.events, self.dedupe)
        self.train_seqs = {u: s for u, s in self.seqs.items() if len(s) >= 2}
        if not self.train_seqs:
            raise TrainError("%s: no user has 2 or more %s events (after collapsing repeats): nothing to "
                             "learn a next item from (see --events)" % (self.inter.path, ",".join(self.events)))
        n_ev = sum(len(s) for s in self.train_seqs.values())
        log("read %s: %d interactions, %d users, %d items; %d users with >= 2 sequence events "
            "(%s, %s), %d sequence events (%.1fs)"
            % (self.inter.path, len(self.inter), len(set(self.inter.users.tolist())), len(self.vocab),
               len(self.train_seqs), ",".join(self.events),
               "consecutive repeats collapsed" if self.dedupe else "repeats kept", n_ev, time.monotonic() - t0))

    def split_last(self):
        """Leave-last-out: ({user: seq without its last item}, validation rows).

        Validation rows are (user, prefix, target line) for users whose last
        item is not already in the prefix (seen items are never recommended).
        """
        train = {}
        valid = []
        for u, s in self.train_seqs.items():
            train[u] = s[:-1]
            t = int(s[-1])
            if t not in set(s[:-1].tolist()):
                valid.append((u, s[:-1], t - 1))
        if not valid:
            raise TrainError("%s: no user has a last item that is new to them: no validation rows"
                             % self.inter.path)
        return train, valid


def validate_sequences(model, valid, max_len, batch=512):
    """Next-item metrics of a sequence model on leave-last-out rows."""
    import torch
    m = Metrics()
    with torch.no_grad():
        for b in range(0, len(valid), batch):
            rows = valid[b:b + batch]
            x = torch.as_tensor(np.stack([pad_left(p, max_len) for _, p, _ in rows]))
            scores = model(x)
            m.add(scores, [set((p - 1).tolist()) for _, p, _ in rows], [{t} for _, _, t in rows])
    return m.result()


def test_metrics_sequence(model, data, test_dir, max_len, batch=512):
    """Test metrics (all / next readings) of a sequence model; inputs built from
    the --data history (train half) exactly as the Go side builds them."""
    import torch
    test = read_interactions(test_dir)
    seen = user_item_sets(data.inter, data.index)

    def build(u):
        return pad_left(data.seqs.get(u, np.zeros(0, np.int64)), max_len)

    return _test_metrics(model, test, seen, data.index, build, torch.int64, batch)


def _test_metrics(model, test, seen, index, build, dtype, batch):
    import torch
    rel_all, rel_next = {}, {}
    seen_raw = {}
    for u, i in zip(test.users, test.items):
        if u not in seen:
            continue  # no train history: cold start, not what the model is measured on
        j = index.get(i)
        s = seen[u]
        if j is not None and j in s:
            continue
        # Items outside the vocabulary stay relevant (the model cannot find
        # them, but the Go eval counts them), and are looked up by id.
        key = j if j is not None else ("id", i)
        rel_all.setdefault(u, set()).add(key)
        if u not in rel_next:
            rel_next[u] = key
    users = sorted(rel_all)
    res = {}
    for name, rel in (("all", lambda u: rel_all[u]), ("next", lambda u: {rel_next[u]})):
        m = Metrics()
        with torch.no_grad():
            for b in range(0, len(users), batch):
                us = users[b:b + batch]
                x = torch.as_tensor(np.stack([build(u) for u in us]), dtype=dtype)
                scores = model(x)
                rels = []
                for u in us:
                    r = rel(u)
                    rels.append(({j for j in r if not isinstance(j, tuple)}, len(r)))
                m.add(scores, [seen[u] for u in us], rels)
        res[name] = m.result()
        log("test (%s relevant) %s" % (name, fmt_metrics(res[name])))
    # The literal reading: the item of the first test event, even if the user
    # already had it in train (then it cannot be recommended: a miss).
    return res


def test_summary(res):
    out = {}
    for name, m in res.items():
        out["test_%s_ndcg10" % name] = round(m["ndcg10"], 6)
        out["test_%s_hr10" % name] = round(m["hr10"], 6)
        out["test_%s_recall20" % name] = round(m["recall20"], 6)
        out["test_%s_users" % name] = int(m["users"])
    return out


def finish_sequence(args, trainer, model, data, best, best_epoch, epochs_run, seconds, hyper):
    """Test metrics, export, parity and the version directory of a sequence model."""
    import torch
    metrics = {
        "valid_ndcg10": round(best["ndcg10"], 6),
        "valid_hr10": round(best["hr10"], 6),
        "valid_recall20": round(best["recall20"], 6),
        "valid_users": int(best["users"]),
        "valid_method": "leave-last-out next item",
        "epochs": int(epochs_run),
        "best_epoch": int(best_epoch),
        "train_seconds": round(seconds, 2),
    }
    if args.test:
        metrics.update(test_summary(test_metrics_sequence(model, data, args.test, args.max_len)))
    users = parity_users(list(data.seqs), args.seed)
    rows = [pad_left(data.seqs[u], args.max_len) for u in users] + [np.zeros(args.max_len, np.int64)]
    onnx_bytes = export_onnx(model, torch.as_tensor(np.stack(rows[:2])), "items", "scores")
    spec = {
        "kind": "onnx",
        "file": MODEL_FILE,
        "items": ITEMS_FILE,
        "signature": "sequence",
        "inputs": ["items"],
        "outputs": ["scores"],
        "params": sequence_params(args, data.events),
        "metadata": metadata(trainer, data.inter, metrics, hyper),
    }
    spec["metadata"]["input_rules"] = SEQUENCE_RULES
    return write_version(args, spec, {
        MODEL_FILE: onnx_bytes,
        ITEMS_FILE: vocab_bytes(data.vocab),
        "parity.json": parity_json(model, rows, torch.int64),
        "parity_users.json": json.dumps(users + [None]).encode(),
    })


def next_item_windows(seqs, max_len, targets=1):
    """Caser-style training rows: for every position t >= 1 of every sequence,
    (last max_len items before t, left-padded; target lines s[t..t+targets-1]
    - 1, -100 = none past the end)."""
    xs, ys = [], []
    for s in seqs.values():
        if len(s) < 2:
            continue
        padded = np.concatenate([np.zeros(max_len, np.int64), s])
        win = np.lib.stride_tricks.sliding_window_view(padded, max_len)  # win[t] = padded[t:t+L]
        xs.append(win[1:len(s)])  # inputs ending before s[t], t = 1..n-1
        tail = np.concatenate([s - 1, np.full(targets - 1, -100, np.int64)])
        ys.append(np.stack([tail[1 + k:len(s) + k] for k in range(targets)], axis=1))
    return np.concatenate(xs), np.concatenate(ys)


def seq2seq_windows(seqs, max_len):
    """GRU training rows: windows of at most max_len inputs with next-item targets
    at every position, cut from the end of each sequence, left-padded (input 0,
    target -100 = ignored)."""
    xs, ys = [], []
    for s in seqs.values():
        n = len(s)
        if n < 2:
            continue
        end = n - 1
        while end > 0:
            start = max(0, end - max_len)
            x = np.zeros(max_len, np.int64)
            y = np.full(max_len, -100, np.int64)
            x[max_len - (end - start):] = s[start:end]
            y[max_len - (end - start):] = s[start + 1:end + 1] - 1
            xs.append(x)
            ys.append(y)
            end = start
    return np.stack(xs), np.stack(ys)
