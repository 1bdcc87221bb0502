#!/usr/bin/env python3
"""Write the tiny ONNX fixtures of the Go onnx model kind's tests.

Every model is a few hundred bytes, exported by torch.onnx with a dynamic
batch dimension, and its outputs on fixed inputs are computed by torch and
written beside it in expected.json, so the Go tests compare onnxruntime's
answers (through models/onnx) with torch's. The fixtures are committed; run
this script only to change them:

  /usr/bin/python3 training/python/onnx_fixtures.py --out models/onnx/testdata

Files (N = 10 items i01..i10 in items.txt):

  user_vector.onnx   history float32 [B,N] -> scores float32 [B,N]: one
                     linear layer (a user_vector signature model)
  sequence.onnx      items int64 [B,5] -> scores float32 [B,N]: the mean of
                     the non-padding item embeddings (index 0 = padding), then
                     a linear layer (a sequence signature model, fixed L = 5)
  sequence_dyn.onnx  the same network with a dynamic length [B,L]
  features.onnx      x float32 [B,3] -> p float32 [B]: a 3-8-1 MLP with a
                     sigmoid (a features signature model)
  features_col.onnx  the same MLP with the output kept as [B,1]
  wrong_shape.onnx   history float32 [B,N] -> scores float32 [B,N-1]
  nan.onnx           history float32 [B,N] -> scores float32 [B,N], all NaN
  expected.json      {model: {"inputs": [...rows], "outputs": [...rows]}}
"""
import argparse
import json
import os

import torch
from torch import nn

N_ITEMS = 10
SEQ_LEN = 5
FEATURES = 3


class UserVector(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)

    def forward(self, history):
        return self.lin(history)


class SequenceMean(nn.Module):
    def __init__(self, n_items, dim=4):
        super().__init__()
        self.emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.out = nn.Linear(dim, n_items)

    def forward(self, items):
        e = self.emb(items)  # [B, L, D]; padding rows are zero
        count = (items != 0).sum(dim=1, keepdim=True).clamp(min=1).to(e.dtype)
        return self.out(e.sum(dim=1) / count)


class FeatureMLP(nn.Module):
    def __init__(self, n_in, column=False):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, 8), nn.ReLU(), nn.Linear(8, 1))
        self.column = column

    def forward(self, x):
        p = torch.sigmoid(self.net(x))
        return p if self.column else p.squeeze(-1)


class NaNModel(nn.Module):
    def forward(self, history):
        # sqrt of a negative number: NaN whatever the input.
        return torch.sqrt(-1.0 - history * history)


def export(model, example, path, in_name, out_name, dynamic_len=False):
    model.eval()
    in_axes = {0: "batch"}
    if dynamic_len:
        in_axes[1] = "len"
    torch.onnx.export(
        model, (example,), path, input_names=[in_name], output_names=[out_name],
        dynamic_axes={in_name: in_axes, out_name: {0: "batch"}}, opset_version=13,
    )


def rows(t):
    return [[float(v) for v in r] if t.dim() > 1 else float(r) for r in t]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output directory (models/onnx/testdata)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(7)
    expected = {}

    with open(os.path.join(args.out, "items.txt"), "w") as f:
        for i in range(1, N_ITEMS + 1):
            f.write("i%02d\n" % i)

    uv = UserVector(N_ITEMS, N_ITEMS)
    x = torch.zeros(3, N_ITEMS)
    x[0, 0], x[0, 3] = 1.0, 5.0
    x[1, 9] = 3.0
    export(uv, x, os.path.join(args.out, "user_vector.onnx"), "history", "scores")
    with torch.no_grad():
        expected["user_vector"] = {"inputs": rows(x), "outputs": rows(uv(x))}

    seq = SequenceMean(N_ITEMS)
    s = torch.tensor([[0, 0, 1, 2, 3], [0, 0, 0, 0, 10], [4, 4, 5, 6, 7], [0, 0, 0, 0, 0]])
    export(seq, s, os.path.join(args.out, "sequence.onnx"), "items", "scores")
    export(seq, s, os.path.join(args.out, "sequence_dyn.onnx"), "items", "scores", dynamic_len=True)
    with torch.no_grad():
        expected["sequence"] = {"inputs": rows(s), "outputs": rows(seq(s))}

    mlp = FeatureMLP(FEATURES)
    fx = torch.tensor([[0.0, 1.0, 2.0], [10.0, -3.0, 0.5], [-1.0, -1.0, -1.0]])
    export(mlp, fx, os.path.join(args.out, "features.onnx"), "x", "p")
    col = FeatureMLP(FEATURES, column=True)
    col.load_state_dict(mlp.state_dict())
    export(col, fx, os.path.join(args.out, "features_col.onnx"), "x", "p")
    with torch.no_grad():
        expected["features"] = {"inputs": rows(fx), "outputs": rows(mlp(fx))}

    export(UserVector(N_ITEMS, N_ITEMS - 1), x, os.path.join(args.out, "wrong_shape.onnx"), "history", "scores")
    export(NaNModel(), x, os.path.join(args.out, "nan.onnx"), "history", "scores")

    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
