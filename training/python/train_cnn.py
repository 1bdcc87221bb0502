#!/usr/bin/env python3
"""Train a Caser-style convolutional next-item recommender and export it to ONNX (signature sequence).

Caser (Tang & Wang 2018) without the user embedding, so the model input is
only the sequence: the embeddings of the user's last --max-len items
(left-padded with 0) form an L x d "image"; --vertical vertical filters
(L x 1) and --horizontal horizontal filters of every height 1..L (h x d,
ReLU, max-pooled over time) are concatenated, go through dropout and a
fully-connected ReLU layer of size d, and a linear layer gives one logit per
vocabulary item. Training: every position t >= 1 of every user's sequence
(the L items before it, left-padded) predicts the item at t with full
softmax cross-entropy; the last item of every user is held out for
validation (leave-last-out, NDCG@10 with seen items ranked out) and drives
early stopping. See neural.py for the exact input rules the Go side
implements and the files of the version directory.

Usage:
  /usr/bin/python3 training/python/train_cnn.py --data DATASET_DIR --out VERSION_DIR \\
      [--epochs 10] [--patience 2] [--seed 7] [--max-len 5] [--events auto] [--no-dedupe] \\
      [--dim 64] [--horizontal 16] [--vertical 4] [--dropout 0.3] [--batch-size 512] \\
      [--lr 2e-3] [--targets 1] [--max-batch-size 32] [--max-queue-delay-us 500] \\
      [--test TEST_DIR] [--force]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import neural  # noqa: E402
from neural import TrainError, log  # noqa: E402

TRAINER = "train_cnn.py"


def build_model(n_items, max_len, dim, n_h, n_v, dropout):
    import torch
    from torch import nn

    class Caser(nn.Module):
        """The convolutions are written as matrix products (a horizontal filter
        of height h is a linear map of h consecutive embeddings, a vertical
        filter a weighted sum over the L positions): the same function as
        Conv2d, several times faster on CPU, and plain MatMul/Slice/Concat
        in ONNX."""

        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
            self.vert = nn.Linear(max_len, n_v) if n_v > 0 else None
            self.horiz = nn.ModuleList([nn.Linear(h * dim, n_h) for h in range(1, max_len + 1)]) \
                if n_h > 0 else nn.ModuleList()
            width = n_v * dim + n_h * max_len
            self.drop = nn.Dropout(dropout)
            self.fc = nn.Linear(width, dim)
            self.out = nn.Linear(dim, n_items)

        def forward(self, items):
            e = self.emb(items)  # [B, L, d]
            parts = []
            if self.vert is not None:
                parts.append(self.vert(e.transpose(1, 2)).flatten(1))  # [B, d * n_v]
            for h, lin in enumerate(self.horiz, start=1):
                n_win = max_len - h + 1
                win = torch.cat([e[:, i:i + n_win, :] for i in range(h)], dim=2)  # [B, L-h+1, h*d]
                parts.append(torch.amax(torch.relu(lin(win)), dim=1))  # [B, n_h]
            z = torch.relu(self.fc(self.drop(torch.cat(parts, 1))))
            return self.out(z)

    return Caser()


def main():
    p = neural.parser(__doc__.split("\n")[0])
    neural.add_common_args(p, max_len=5)
    p.set_defaults(batch_size=512, lr=2e-3, epochs=10, patience=2)
    p.add_argument("--dim", type=int, default=64, help="item embedding size")
    p.add_argument("--horizontal", type=int, default=16, help="horizontal filters per height (0: none)")
    p.add_argument("--vertical", type=int, default=4, help="vertical filters (0: none)")
    p.add_argument("--dropout", type=float, default=0.3, help="dropout before the fully-connected layer")
    p.add_argument("--targets", type=int, default=1,
                   help="Caser's T: each row predicts the next T items (mean cross-entropy over them)")
    args = p.parse_args()

    def run():
        import torch
        import torch.nn.functional as F

        neural.check_common_args(args)
        if args.dim < 1:
            raise TrainError("--dim %d: want at least 1" % args.dim)
        if args.horizontal < 0 or args.vertical < 0 or args.horizontal + args.vertical == 0:
            raise TrainError("--horizontal and --vertical must be >= 0, and not both 0")
        if not 0 <= args.dropout < 1:
            raise TrainError("--dropout %g: want 0 <= dropout < 1" % args.dropout)
        neural.setup_torch(args.seed, args.threads)
        data = neural.SequenceData(args)
        train, valid = data.split_last()
        if args.targets < 1:
            raise TrainError("--targets %d: want at least 1" % args.targets)
        x, y = neural.next_item_windows(train, args.max_len, args.targets)
        log("training rows: %d (last %d items -> next item), validation users: %d"
            % (len(x), args.max_len, len(valid)))
        x, y = torch.as_tensor(x.copy()), torch.as_tensor(y)
        model = build_model(len(data.vocab), args.max_len, args.dim, args.horizontal, args.vertical,
                            args.dropout)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        gen = torch.Generator().manual_seed(args.seed)

        def train_epoch(epoch):
            perm = torch.randperm(len(x), generator=gen)
            total = 0.0
            for b in range(0, len(x), args.batch_size):
                idx = perm[b:b + args.batch_size]
                logits = model(x[idx])
                yi = y[idx]
                loss = F.cross_entropy(logits.unsqueeze(2).expand(-1, -1, yi.shape[1]), yi,
                                       ignore_index=-100)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss) * len(idx)
            return total / len(x)

        best, best_epoch, epochs_run, seconds = neural.fit(
            model, train_epoch, lambda: neural.validate_sequences(model, valid, args.max_len),
            args.epochs, args.patience, "cnn")
        hyper = {"model": "caser", "dim": args.dim, "horizontal_filters": args.horizontal,
                 "vertical_filters": args.vertical, "dropout": args.dropout, "max_len": args.max_len,
                 "user_embedding": False, "batch_size": args.batch_size, "lr": args.lr,
                 "max_epochs": args.epochs, "patience": args.patience, "seed": args.seed,
                 "loss": "full softmax cross-entropy, next %d item(s)" % args.targets,
                 "targets": args.targets,
                 "events": ",".join(data.events), "dedupe_consecutive": not args.no_dedupe}
        neural.finish_sequence(args, TRAINER, model, data, best, best_epoch, epochs_run, seconds, hyper)

    neural.run(run, TRAINER)


if __name__ == "__main__":
    main()
