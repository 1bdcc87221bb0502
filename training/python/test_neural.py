#!/usr/bin/env python3
"""Tests of the neural trainers (train_ae.py, train_cnn.py, train_rnn.py) and neural.py.

Run: /usr/bin/python3 -m unittest discover -s training/python -p 'test_*.py'
 or: /usr/bin/python3 training/python/test_neural.py

Each trainer runs as a subprocess for one epoch on a small synthetic dataset
directory (users walking successor chains of items, with carts, purchases
and ratings) written by the test; the version directory is then checked:
model.yaml keys and values (dynamic batching included), items.txt, the ONNX graph (onnx.checker, tensor
names, element types, the dynamic batch axis and fixed dims), parity.json
(shape, and that its inputs are exactly what the documented input rule
builds from the users named in parity_users.json).
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
PYTHON = sys.executable
SPEC_KEYS = {"kind", "file", "items", "features", "signature", "inputs", "outputs", "params", "metadata"}
WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0}


def make_dataset(d, users=60, items=30, seed=3):
    """Writes d/interactions.csv; returns the rows written (file order)."""
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(seed)
    succ = rng.permutation(items)
    rows = []
    t = 1_700_000_000
    for u in range(users):
        cur = int(rng.integers(items))
        for s in range(int(rng.integers(1, 4))):
            for _ in range(int(rng.integers(2, 9))):
                t += int(rng.integers(1, 50))
                rows.append(("u%03d" % u, "i%03d" % cur, "view", "", t, "s%d-%d" % (u, s)))
                if rng.random() < 0.2:
                    rows.append(("u%03d" % u, "i%03d" % cur, "cart", "1", t, "s%d-%d" % (u, s)))
                    if rng.random() < 0.5:
                        rows.append(("u%03d" % u, "i%03d" % cur, "purchase", "1", t + 5, "s%d-%d" % (u, s)))
                        if rng.random() < 0.5:
                            rows.append(("u%03d" % u, "i%03d" % cur, "rating", str(int(rng.integers(1, 6))),
                                         t + 9, ""))
                cur = int(succ[cur]) if rng.random() < 0.8 else int(rng.integers(items))
    # Shuffle the file order a little: the trainers sort by timestamp (stably).
    order = np.argsort(np.array([r[4] for r in rows]) + rng.integers(0, 3, len(rows)), kind="stable")
    rows = [rows[i] for i in order]
    with open(os.path.join(d, "interactions.csv"), "w") as f:
        f.write("user_id,item_id,event,value,timestamp,session_id\n")
        for r in rows:
            f.write("%s,%s,%s,%s,%d,%s\n" % r)
    return rows


def run_trainer(script, *args):
    return subprocess.run([PYTHON, os.path.join(HERE, script)] + list(args),
                          capture_output=True, text=True, timeout=300)


class NeuralHelpersTest(unittest.TestCase):
    def test_pad_and_dedupe(self):
        import neural
        self.assertEqual(neural.pad_left(np.array([3, 4]), 4).tolist(), [0, 0, 3, 4])
        self.assertEqual(neural.pad_left(np.array([1, 2, 3, 4, 5]), 3).tolist(), [3, 4, 5])
        self.assertEqual(neural.pad_left(np.zeros(0, np.int64), 2).tolist(), [0, 0])

    def test_windows(self):
        import neural
        x, y = neural.next_item_windows({"u": np.array([5, 6, 7])}, 2, targets=2)
        self.assertEqual(x.tolist(), [[0, 5], [5, 6]])
        self.assertEqual(y.tolist(), [[5, 6], [6, -100]])
        x, y = neural.seq2seq_windows({"u": np.array([5, 6, 7, 8])}, 2)
        self.assertEqual(x.tolist(), [[6, 7], [0, 5]])
        self.assertEqual(y.tolist(), [[6, 7], [-100, 5]])

    def test_sequences_and_weights(self):
        import neural
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        with open(os.path.join(tmp, "interactions.csv"), "w") as f:
            f.write("user_id,item_id,event,value,timestamp\n"
                    "u1,b,view,,20\n"        # later than the next line: sorted by time
                    "u1,a,view,,10\n"
                    "u1,b,cart,1,20\n"       # same time as line 2: file order kept
                    "u1,c,rating,4,30\n"
                    "u1,a,purchase,2,40\n"   # value ignored except for ratings
                    "u2,zz,View,,5\n")
        inter = neural.read_interactions(tmp)
        vocab = neural.build_vocab(inter)
        self.assertEqual(vocab, ["a", "b", "c", "zz"])
        index = {i: j for j, i in enumerate(vocab)}
        seqs = neural.user_sequences(inter, index, ["view", "cart", "purchase"], dedupe=True)
        self.assertEqual(seqs["u1"].tolist(), [1, 2, 1])
        seqs = neural.user_sequences(inter, index, ["view", "cart", "purchase", "rating"], dedupe=False)
        self.assertEqual(seqs["u1"].tolist(), [1, 2, 2, 3, 1])
        w = neural.user_weights(inter, index)
        got = dict(zip(w["u1"][0].tolist(), w["u1"][1].tolist()))
        self.assertEqual(got, {0: 6.0, 1: 4.0, 2: 4.0})
        self.assertEqual(neural.weights_param(), "view:1,cart:3,purchase:5,rating:1")

    def test_bad_rows(self):
        import neural
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        cases = [
            ("user_id,item_id,event,value,timestamp\nu1,a,click,,1\n", "line 2: unknown event"),
            ("user_id,item_id,event,value,timestamp\nu1,a,view,,1\nu1,a,rating,,2\n", "line 3: rating event with empty value"),
            ("user_id,item_id,event,value,timestamp\nu1,a,view,,yesterday\n", "line 2: bad timestamp"),
            ("user_id,item_id,event\nu1,a,view\n", "missing column(s) timestamp"),
            ("user_id,item_id,event,timestamp\n,a,view,1\n", "line 2: empty user_id"),
        ]
        for text, want in cases:
            with open(os.path.join(tmp, "interactions.csv"), "w") as f:
                f.write(text)
            with self.assertRaises(neural.TrainError) as cm:
                neural.read_interactions(tmp)
            self.assertIn(want, str(cm.exception))
            self.assertIn("interactions.csv", str(cm.exception))
        with open(os.path.join(tmp, "interactions.csv"), "w") as f:
            f.write("user_id,item_id,event,value,timestamp\nu1,a,view,,2026-01-02T03:04:05Z\n")
        self.assertEqual(neural.read_interactions(tmp).ts.tolist(), [1767323045])


class TrainersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="test_neural_")
        cls.data = os.path.join(cls.tmp, "data")
        cls.rows = make_dataset(cls.data)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_onnx(self, path, in_name, in_type, in_dim, n_items):
        import onnx
        m = onnx.load(path)
        onnx.checker.check_model(m)
        self.assertEqual([i.name for i in m.graph.input], [in_name])
        self.assertEqual([o.name for o in m.graph.output], ["scores"])
        inp, out = m.graph.input[0].type.tensor_type, m.graph.output[0].type.tensor_type
        self.assertEqual(inp.elem_type, in_type)
        self.assertEqual(out.elem_type, onnx.TensorProto.FLOAT)
        self.assertEqual(inp.shape.dim[0].dim_param, "batch")
        self.assertEqual(out.shape.dim[0].dim_param, "batch")
        self.assertEqual(inp.shape.dim[1].dim_value, in_dim)
        self.assertEqual(out.shape.dim[1].dim_value, n_items)

    def check_version(self, out, trainer, signature, in_name):
        with open(os.path.join(out, "model.yaml")) as f:
            spec = yaml.safe_load(f)
        self.assertLessEqual(set(spec), SPEC_KEYS)
        self.assertEqual(spec["kind"], "onnx")
        self.assertEqual(spec["file"], "model.onnx")
        self.assertEqual(spec["items"], "items.txt")
        self.assertEqual(spec["signature"], signature)
        self.assertEqual(spec["inputs"], [in_name])
        self.assertEqual(spec["outputs"], ["scores"])
        md = spec["metadata"]
        self.assertEqual(md["trainer"], trainer)
        self.assertEqual(md["dataset"], os.path.abspath(self.data))
        self.assertEqual(len(md["dataset_sha256"]), 64)
        for k in ("valid_ndcg10", "valid_hr10", "epochs", "best_epoch"):
            self.assertIn(k, md["metrics"])
        self.assertEqual(md["metrics"]["epochs"], 1)
        with open(os.path.join(out, "items.txt")) as f:
            vocab = f.read().split("\n")
        self.assertEqual(vocab[-1], "")
        vocab = vocab[:-1]
        self.assertEqual(vocab, sorted(set(r[1] for r in self.rows)))
        with open(os.path.join(out, "parity.json")) as f:
            par = json.load(f)
        self.assertEqual(set(par), {"inputs", "outputs"})
        self.assertGreaterEqual(len(par["inputs"]), 8)
        self.assertLessEqual(len(par["inputs"]), 16)
        self.assertEqual(len(par["inputs"]), len(par["outputs"]))
        for row in par["outputs"]:
            self.assertEqual(len(row), len(vocab))
            self.assertTrue(all(math.isfinite(v) for v in row))
        with open(os.path.join(out, "parity_users.json")) as f:
            users = json.load(f)
        self.assertEqual(len(users), len(par["inputs"]))
        return spec, vocab, par, users

    def check_batching(self, params):
        """The trainers' default dynamic batching is in model.yaml params."""
        import neural
        self.assertEqual(params["max_batch_size"], neural.DEFAULT_MAX_BATCH_SIZE)
        self.assertEqual(params["max_queue_delay_us"], neural.DEFAULT_MAX_QUEUE_DELAY_US)
        self.assertEqual(neural.DEFAULT_MAX_BATCH_SIZE, 32)

    def history(self, user, events):
        """The user's rows in time order (ties: file order), filtered to events."""
        rows = [(r[4], n, r) for n, r in enumerate(self.rows) if r[0] == user and r[2] in events]
        return [r for _, _, r in sorted(rows)]

    def check_sequence(self, script, signature_len):
        out = os.path.join(self.tmp, script + "-v1")
        r = run_trainer(script, "--data", self.data, "--out", out, "--epochs", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("epoch 1", r.stdout)
        spec, vocab, par, users = self.check_version(out, script, "sequence", "items")
        p = spec["params"]
        self.assertEqual(p["max_len"], signature_len)
        self.assertEqual(p["events"], "view,cart,purchase")
        self.assertIs(p["dedupe_consecutive"], True)
        self.check_batching(p)
        self.check_onnx(os.path.join(out, "model.onnx"), "items", 7, signature_len, len(vocab))
        # The parity inputs are what the documented rule builds from the history.
        for row, user in zip(par["inputs"], users):
            self.assertEqual(len(row), signature_len)
            if user is None:
                self.assertEqual(row, [0] * signature_len)
                continue
            seq = []
            for r in self.history(user, p["events"].split(",")):
                j = vocab.index(r[1]) + 1
                if not seq or seq[-1] != j:
                    seq.append(j)
            seq = seq[-signature_len:]
            self.assertEqual(row, [0] * (signature_len - len(seq)) + seq, user)
        # --force is needed to replace a version.
        r = run_trainer(script, "--data", self.data, "--out", out, "--epochs", "1")
        self.assertEqual(r.returncode, 2)
        self.assertIn("exists and is not empty (use --force", r.stderr)

    def test_rnn(self):
        self.check_sequence("train_rnn.py", 50)

    def test_cnn(self):
        self.check_sequence("train_cnn.py", 5)

    def test_ae(self):
        out = os.path.join(self.tmp, "ae-v1")
        r = run_trainer("train_ae.py", "--data", self.data, "--out", out, "--epochs", "1", "--hidden", "32")
        self.assertEqual(r.returncode, 0, r.stderr)
        spec, vocab, par, users = self.check_version(out, "train_ae.py", "user_vector", "history")
        self.assertEqual(spec["params"]["weights"], "view:1,cart:3,purchase:5,rating:1")
        # Only what the Go onnx kind reads: the input rule and dynamic batching.
        self.assertEqual(set(spec["params"]), {"weights", "max_batch_size", "max_queue_delay_us"})
        self.check_batching(spec["params"])
        self.assertIn("input_rules", spec["metadata"])
        self.check_onnx(os.path.join(out, "model.onnx"), "history", 1, len(vocab), len(vocab))
        self.assertGreaterEqual(users.count(None), 1)
        for row, user in zip(par["inputs"], users):
            want = [0.0] * len(vocab)
            if user is not None:
                for r in self.history(user, ("view", "cart", "purchase", "rating")):
                    w = float(r[3]) if r[2] == "rating" else WEIGHTS[r[2]]
                    want[vocab.index(r[1])] += w
            self.assertEqual(row, want, user)

    def test_batching_flags(self):
        """--max-batch-size and --max-queue-delay-us set the model.yaml keys;
        0 or 1 leaves batching off (no keys); out-of-range values are refused."""
        cases = [
            (["--max-batch-size", "8", "--max-queue-delay-us", "0"], {"max_batch_size": 8, "max_queue_delay_us": 0}),
            (["--max-batch-size", "64", "--max-queue-delay-us", "2000"],
             {"max_batch_size": 64, "max_queue_delay_us": 2000}),
            (["--max-batch-size", "1"], {}),
            (["--max-batch-size", "0"], {}),
        ]
        for n, (flags, want) in enumerate(cases):
            out = os.path.join(self.tmp, "cnn-batching-%d" % n)
            r = run_trainer("train_cnn.py", "--data", self.data, "--out", out, "--epochs", "1", *flags)
            self.assertEqual(r.returncode, 0, (flags, r.stderr))
            with open(os.path.join(out, "model.yaml")) as f:
                params = yaml.safe_load(f)["params"]
            got = {k: params[k] for k in ("max_batch_size", "max_queue_delay_us") if k in params}
            self.assertEqual(got, want, flags)
        for flags, msg in ((["--max-batch-size", "-1"], "--max-batch-size -1"),
                           (["--max-batch-size", "70000"], "--max-batch-size 70000"),
                           (["--max-queue-delay-us", "-5"], "--max-queue-delay-us -5")):
            out = os.path.join(self.tmp, "batching-err")
            r = run_trainer("train_rnn.py", "--data", self.data, "--out", out, *flags)
            self.assertEqual(r.returncode, 2, (flags, r.stderr))
            self.assertIn(msg, r.stderr)
            self.assertFalse(os.path.exists(out))

    def test_errors(self):
        missing = os.path.join(self.tmp, "nope")
        empty = os.path.join(self.tmp, "empty")
        header = os.path.join(self.tmp, "header")
        os.makedirs(empty, exist_ok=True)
        os.makedirs(header, exist_ok=True)
        with open(os.path.join(header, "interactions.csv"), "w") as f:
            f.write("user_id,item_id,event,value,timestamp\n")
        cases = [
            ("train_rnn.py", missing, missing + ": no such directory"),
            ("train_cnn.py", empty, os.path.join(empty, "interactions.csv") + ": no such file"),
            ("train_ae.py", header, os.path.join(header, "interactions.csv") + ": no interactions"),
            ("train_rnn.py", header, os.path.join(header, "interactions.csv") + ": no interactions"),
        ]
        for script, data, want in cases:
            out = os.path.join(self.tmp, "err-out")
            r = run_trainer(script, "--data", data, "--out", out)
            self.assertEqual(r.returncode, 2, (script, r.stdout, r.stderr))
            self.assertIn(want, r.stderr)
            self.assertNotIn("Traceback", r.stderr)
            self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
