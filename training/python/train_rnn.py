#!/usr/bin/env python3
"""Train a GRU4Rec-style next-item recommender and export it to ONNX (signature sequence).

A GRU runs over the embeddings of the user's last --max-len items (left-padded
with 0) and a linear layer maps its last hidden state to one logit per
vocabulary item. Training cuts every user's sequence into windows of at most
--max-len items from the end and predicts the next item at every position
(full softmax cross-entropy over all items); the last item of every user is
held out for validation (leave-last-out, NDCG@10 with seen items ranked out)
and drives early stopping. See neural.py for the exact input rules the Go
side implements and the files of the version directory.

Usage:
  /usr/bin/python3 training/python/train_rnn.py --data DATASET_DIR --out VERSION_DIR \\
      [--epochs 10] [--patience 2] [--seed 7] [--max-len 50] [--events auto] [--no-dedupe] \\
      [--dim 64] [--hidden 128] [--dropout 0.2] [--batch-size 128] [--lr 5e-3] \\
      [--max-batch-size 32] [--max-queue-delay-us 500] [--test TEST_DIR] [--force]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import neural  # noqa: E402
from neural import TrainError, log  # noqa: E402

TRAINER = "train_rnn.py"


def build_model(n_items, dim, hidden, dropout):
    import torch
    from torch import nn

    class GRU4Rec(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
            self.drop = nn.Dropout(dropout)
            self.gru = nn.GRU(dim, hidden, batch_first=True)
            self.out = nn.Linear(hidden, n_items)

        def all_steps(self, items):
            h, _ = self.gru(self.drop(self.emb(items)))
            return self.out(self.drop(h))  # [B, L, N]

        def forward(self, items):
            h, _ = self.gru(self.emb(items) if not self.training else self.drop(self.emb(items)))
            return self.out(h[:, -1, :])

    torch.nn.init.normal_  # keep default initialisers
    return GRU4Rec()


def main():
    p = neural.parser(__doc__.split("\n")[0])
    neural.add_common_args(p, max_len=50)
    p.set_defaults(batch_size=128, lr=5e-3, epochs=10, patience=2)
    p.add_argument("--dim", type=int, default=64, help="item embedding size")
    p.add_argument("--hidden", type=int, default=128, help="GRU hidden size")
    p.add_argument("--dropout", type=float, default=0.2, help="dropout on embeddings and GRU outputs")
    args = p.parse_args()

    def run():
        import numpy as np
        import torch
        import torch.nn.functional as F

        neural.check_common_args(args)
        if args.dim < 1 or args.hidden < 1:
            raise TrainError("--dim and --hidden must be at least 1")
        if not 0 <= args.dropout < 1:
            raise TrainError("--dropout %g: want 0 <= dropout < 1" % args.dropout)
        neural.setup_torch(args.seed, args.threads)
        data = neural.SequenceData(args)
        train, valid = data.split_last()
        x, y = neural.seq2seq_windows(train, args.max_len)
        log("training windows: %d of length %d (%d next-item targets), validation users: %d"
            % (len(x), args.max_len, int((y >= 0).sum()), len(valid)))
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        n = len(data.vocab)
        model = build_model(n, args.dim, args.hidden, args.dropout)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        gen = torch.Generator().manual_seed(args.seed)

        def train_epoch(epoch):
            perm = torch.randperm(len(x), generator=gen)
            total, count = 0.0, 0
            for b in range(0, len(x), args.batch_size):
                idx = perm[b:b + args.batch_size]
                logits = model.all_steps(x[idx])
                loss = F.cross_entropy(logits.reshape(-1, n), y[idx].reshape(-1), ignore_index=-100)
                opt.zero_grad()
                loss.backward()
                opt.step()
                k = int((y[idx] >= 0).sum())
                total += float(loss) * k
                count += k
            return total / max(count, 1)

        best, best_epoch, epochs_run, seconds = neural.fit(
            model, train_epoch, lambda: neural.validate_sequences(model, valid, args.max_len),
            args.epochs, args.patience, "rnn")
        hyper = {"model": "gru4rec", "dim": args.dim, "hidden": args.hidden, "dropout": args.dropout,
                 "max_len": args.max_len, "batch_size": args.batch_size, "lr": args.lr,
                 "max_epochs": args.epochs, "patience": args.patience, "seed": args.seed,
                 "loss": "full softmax cross-entropy, next item at every position",
                 "events": ",".join(data.events), "dedupe_consecutive": not args.no_dedupe}
        neural.finish_sequence(args, TRAINER, model, data, best, best_epoch, epochs_run, seconds, hyper)

    neural.run(run, TRAINER)


if __name__ == "__main__":
    main()
