#!/usr/bin/env python3
"""Train a Mult-DAE autoencoder recommender and export it to ONNX (signature user_vector).

Mult-DAE (Liang et al. 2018, "Variational Autoencoders for Collaborative
Filtering", the denoising variant): the user's weighted history vector
(view 1, cart 3, purchase 5, rating 1 x value, summed per item) is turned
into 1 where positive (--input binary, the default: it ranks better on the
demo data) or log1p(max(x, 0)) (--input log1p) and L2-normalised inside the
graph, so the Go side only sums weights; it is dropped out
(training only), encoded by tanh layer(s) and decoded to one logit per
vocabulary item; the loss is the multinomial log-likelihood of the user's
items (binary: every touched item counts once) under softmax(logits).

Validation: --valid-users of the users (those with at least two items) get
--valid-holdout of their items held out; their other items stay in the
training rows and are the fold-in input. Early stopping on NDCG@10 of the
held-out items, ranking the input items out. See neural.py for the exact
input rule the Go side implements and the files of the version directory.

Usage:
  /usr/bin/python3 training/python/train_ae.py --data DATASET_DIR --out VERSION_DIR \\
      [--epochs 150] [--patience 15] [--seed 7] [--hidden 600] [--dropout 0.5] \\
      [--input binary] [--vae] [--weight-decay 0] [--batch-size 256] [--lr 1e-3] [--valid-users 0.2] \\
      [--valid-holdout 0.2] [--max-batch-size 32] [--max-queue-delay-us 500] [--test TEST_DIR] [--force]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import neural  # noqa: E402
from neural import TrainError, log  # noqa: E402

TRAINER = "train_ae.py"


def build_model(n_items, hidden, dropout, latent=0, binary=False):
    """Mult-DAE with hidden layer sizes hidden (decoder mirrored); with
    latent > 0 Mult-VAE: the encoder ends in a Gaussian of size latent (the
    mean is used outside training, so the exported graph is deterministic)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class MultAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(dropout)
            dims = [n_items] + hidden
            enc = list(zip(dims[:-1], dims[1:]))
            dec_dims = dims[::-1]
            if latent > 0:
                enc.append((dims[-1], 2 * latent))
                dec_dims = [latent] + dec_dims
            self.enc = nn.ModuleList([nn.Linear(a, b) for a, b in enc])
            self.dec = nn.ModuleList([nn.Linear(a, b) for a, b in zip(dec_dims[:-1], dec_dims[1:])])
            self.kl = None

        def forward(self, history):
            if binary:
                x = (history > 0).to(history.dtype)
            else:
                x = torch.log1p(torch.relu(history))
            h = self.drop(F.normalize(x, p=2.0, dim=1))
            for i, layer in enumerate(self.enc):
                h = layer(h)
                if latent == 0 or i < len(self.enc) - 1:
                    h = torch.tanh(h)
            if latent > 0:
                mu, logvar = h[:, :latent], h[:, latent:]
                if self.training:
                    h = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
                    self.kl = (0.5 * (-logvar + torch.exp(logvar) + mu * mu - 1).sum(1)).mean()
                else:
                    h = mu
            for i, layer in enumerate(self.dec):
                h = layer(h)
                if i < len(self.dec) - 1:
                    h = torch.tanh(h)
            return h

    return MultAE()


def main():
    p = neural.parser(__doc__.split("\n")[0])
    neural.add_common_args(p)
    p.set_defaults(epochs=150, patience=15, batch_size=256, lr=1e-3)
    p.add_argument("--hidden", default="600", help="hidden layer sizes, comma-separated (decoder mirrors them)")
    p.add_argument("--dropout", type=float, default=0.5, help="dropout on the normalised input")
    p.add_argument("--weight-decay", type=float, default=0.0, help="Adam weight decay (L2)")
    p.add_argument("--input", choices=("log1p", "binary"), default="binary",
                   help="what the graph makes of the weight sums before L2-normalising: log1p(max(x,0)), "
                        "or 1 where x > 0")
    p.add_argument("--vae", action="store_true", help="Mult-VAE instead of Mult-DAE")
    p.add_argument("--latent", type=int, default=200, help="Mult-VAE latent size")
    p.add_argument("--beta", type=float, default=0.2, help="Mult-VAE maximum KL weight")
    p.add_argument("--anneal-steps", type=int, default=400,
                   help="Mult-VAE: training steps over which the KL weight grows from 0 to --beta")
    p.add_argument("--valid-users", type=float, default=0.2, help="share of users with held-out items")
    p.add_argument("--valid-holdout", type=float, default=0.2, help="share of a validation user's items held out")
    args = p.parse_args()

    def run():
        import numpy as np
        import torch
        import torch.nn.functional as F

        neural.check_common_args(args)
        try:
            hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
        except ValueError:
            raise TrainError("--hidden %r: want comma-separated positive integers" % args.hidden)
        if not hidden or min(hidden) < 1:
            raise TrainError("--hidden %r: want comma-separated positive integers" % args.hidden)
        if not 0 <= args.dropout < 1:
            raise TrainError("--dropout %g: want 0 <= dropout < 1" % args.dropout)
        if args.weight_decay < 0:
            raise TrainError("--weight-decay %g: want >= 0" % args.weight_decay)
        for flag, v in (("--valid-users", args.valid_users), ("--valid-holdout", args.valid_holdout)):
            if not 0 < v < 1:
                raise TrainError("%s %g: want a fraction strictly between 0 and 1" % (flag, v))
        neural.setup_torch(args.seed, args.threads)

        t0 = neural.time.monotonic()
        inter = neural.read_interactions(args.data)
        vocab = neural.build_vocab(inter)
        index = {i: j for j, i in enumerate(vocab)}
        hist = neural.user_weights(inter, index)
        users = sorted(hist)
        n = len(vocab)
        log("read %s: %d interactions, %d users, %d items (%.1fs)"
            % (inter.path, len(inter), len(users), n, neural.time.monotonic() - t0))

        rng = np.random.default_rng(args.seed)
        eligible = [u for u in users if len(hist[u][0]) >= 2]
        if not eligible:
            raise TrainError("%s: no user has 2 or more distinct items: cannot hold out validation items"
                             % inter.path)
        n_valid = max(1, int(round(args.valid_users * len(eligible))))
        valid_users = set(eligible[i] for i in rng.choice(len(eligible), size=n_valid, replace=False))
        x = np.zeros((len(users), n), dtype=np.float32)
        valid_rows, valid_targets = [], []
        for r, u in enumerate(users):
            items, w = hist[u]
            if u in valid_users:
                k = max(1, int(round(args.valid_holdout * len(items))))
                held = np.zeros(len(items), dtype=bool)
                held[rng.choice(len(items), size=k, replace=False)] = True
                x[r, items[~held]] = w[~held]
                valid_rows.append(r)
                valid_targets.append(set(items[held].tolist()))
            else:
                x[r, items] = w
        log("training rows: %d users; validation: %d users with %d held-out items"
            % (len(users), len(valid_rows), sum(len(t) for t in valid_targets)))
        xt = torch.as_tensor(x)
        target = (xt > 0).float()
        if args.vae and (args.latent < 1 or args.beta < 0 or args.anneal_steps < 1):
            raise TrainError("--latent and --anneal-steps must be >= 1 and --beta >= 0")
        model = build_model(n, hidden, args.dropout, args.latent if args.vae else 0, args.input == "binary")
        step = [0]
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        gen = torch.Generator().manual_seed(args.seed)
        vx = xt[valid_rows]
        v_seen = [set(np.flatnonzero(x[r]).tolist()) for r in valid_rows]

        def train_epoch(epoch):
            perm = torch.randperm(len(xt), generator=gen)
            total = 0.0
            for b in range(0, len(xt), args.batch_size):
                idx = perm[b:b + args.batch_size]
                logits = model(xt[idx])
                loss = -(F.log_softmax(logits, 1) * target[idx]).sum(1).mean()
                if args.vae:
                    loss = loss + min(args.beta, args.beta * step[0] / args.anneal_steps) * model.kl
                    step[0] += 1
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss) * len(idx)
            return total / len(xt)

        def validate():
            m = neural.Metrics()
            with torch.no_grad():
                for b in range(0, len(valid_rows), 1024):
                    m.add(model(vx[b:b + 1024]), v_seen[b:b + 1024], valid_targets[b:b + 1024])
            return m.result()

        best, best_epoch, epochs_run, seconds = neural.fit(model, train_epoch, validate, args.epochs,
                                                           args.patience, "ae")
        metrics = {
            "valid_ndcg10": round(best["ndcg10"], 6),
            "valid_hr10": round(best["hr10"], 6),
            "valid_recall20": round(best["recall20"], 6),
            "valid_users": int(best["users"]),
            "valid_method": "held-out items of validation users (fold-in)",
            "epochs": int(epochs_run),
            "best_epoch": int(best_epoch),
            "train_seconds": round(seconds, 2),
        }
        full = {}
        for u in users:
            v = np.zeros(n, dtype=np.float32)
            v[hist[u][0]] = hist[u][1]
            full[u] = v
        if args.test:
            test = neural.read_interactions(args.test)
            seen = neural.user_item_sets(inter, index)
            zero = np.zeros(n, dtype=np.float32)
            res = neural._test_metrics(model, test, seen, index, lambda u: full.get(u, zero), torch.float32, 512)
            metrics.update(neural.test_summary(res))

        pusers = neural.parity_users(users, args.seed)
        rows = [full[u] for u in pusers] + [np.zeros(n, dtype=np.float32)] * 3
        onnx_bytes = neural.export_onnx(model, torch.as_tensor(np.stack(rows[:2])), "history", "scores")
        hyper = {"model": "mult-vae" if args.vae else "mult-dae", "hidden": hidden, "activation": "tanh",
                 "input": args.input,
                 "dropout": args.dropout,
                 "weight_decay": args.weight_decay, "batch_size": args.batch_size, "lr": args.lr,
                 "max_epochs": args.epochs, "patience": args.patience, "seed": args.seed,
                 "valid_users": args.valid_users, "valid_holdout": args.valid_holdout,
                 "loss": "multinomial log-likelihood of the binary item set"}
        if args.vae:
            hyper.update({"latent": args.latent, "beta": args.beta, "anneal_steps": args.anneal_steps})
        spec = {
            "kind": "onnx",
            "file": neural.MODEL_FILE,
            "items": neural.ITEMS_FILE,
            "signature": "user_vector",
            "inputs": ["history"],
            "outputs": ["scores"],
            "params": dict({"weights": neural.weights_param()}, **neural.batching_params(args)),
            "metadata": neural.metadata(TRAINER, inter, metrics, hyper),
        }
        # How to build the input, in words: params holds only what the Go
        # onnx kind reads (it rejects unknown keys).
        spec["metadata"]["input_rules"] = (
            "entry j = sum of weight(event) over the user's interactions with vocabulary item j "
            "(rating: weight x value); items not in items.txt are skipped; all zeros for no history; "
            "no normalisation outside the graph, which applies "
            + ("max(x,0), log1p, L2" if args.input == "log1p" else "x > 0 -> 1, L2"))
        neural.write_version(args, spec, {
            neural.MODEL_FILE: onnx_bytes,
            neural.ITEMS_FILE: neural.vocab_bytes(vocab),
            "parity.json": neural.parity_json(model, rows, torch.float32),
            "parity_users.json": neural.json.dumps(pusers + [None] * 3).encode(),
        })

    neural.run(run, TRAINER)


if __name__ == "__main__":
    main()
