#!/usr/bin/env python3
"""Train an XGBoost gradient-boosted purchase-propensity scorer (kind gbm).

Reads the features CSV written by `recctl features` (user_id,item_id,cut,label,
<features...>; empty cell = missing, kept as missing for XGBoost), holds out
the latest cut (or, with a single cut, a random 20% of users) for validation,
boosts binary:logistic trees with early stopping on the validation log loss,
and writes a model version directory:

  model.json   Booster.save_model JSON, with feature names, only the trees up
               to the best iteration
  model.yaml   kind: gbm, file: model.json, features, params.format, metadata

Prints `valid auc=... logloss=... rows=... positives=... train_rows=...
train_positives=...`. Errors in the input exit with status 2 and a message
naming the file.

Usage:
  /usr/bin/python3 training/python/train_gbm.py --features features.csv \\
      --out repo/propensity_gbm/1 [--valid-frac 0.2] [--seed 7] [--nthread 2] \\
      [--max-depth 6] [--eta 0.05] [--rounds 1000] [--early-stopping 50] \\
      [--min-child-weight 5] [--subsample 0.8] [--colsample-bytree 0.8] \\
      [--lambda 1] [--exclude-columns a,b] [--force]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import propensity  # noqa: E402
from propensity import TrainError  # noqa: E402


def main():
    p = propensity.parser(__doc__.split("\n")[0])
    propensity.add_common_args(p)
    p.add_argument("--nthread", type=int, default=2, help="XGBoost threads")
    p.add_argument("--max-depth", type=int, default=6, help="maximum tree depth")
    p.add_argument("--eta", type=float, default=0.05, help="learning rate")
    p.add_argument("--rounds", type=int, default=1000, help="maximum boosting rounds")
    p.add_argument("--early-stopping", type=int, default=50,
                   help="stop after this many rounds without a better validation log loss (0: off)")
    p.add_argument("--min-child-weight", type=float, default=5.0,
                   help="minimum hessian sum in a leaf (about 5/(p(1-p)) rows)")
    p.add_argument("--subsample", type=float, default=0.8, help="row sampling per tree")
    p.add_argument("--colsample-bytree", type=float, default=0.8, help="feature sampling per tree")
    p.add_argument("--lambda", dest="reg_lambda", type=float, default=1.0, help="L2 regularisation of leaves")
    args = p.parse_args()

    def run():
        if args.max_depth < 1:
            raise TrainError("--max-depth %d: want at least 1" % args.max_depth)
        if not 0 < args.eta <= 1:
            raise TrainError("--eta %g: want 0 < eta <= 1" % args.eta)
        if args.rounds < 1:
            raise TrainError("--rounds %d: want at least 1" % args.rounds)
        if args.early_stopping < 0:
            raise TrainError("--early-stopping %d: want 0 (off) or more" % args.early_stopping)
        for flag, v in (("--subsample", args.subsample), ("--colsample-bytree", args.colsample_bytree)):
            if not 0 < v <= 1:
                raise TrainError("%s %g: want a fraction in (0, 1]" % (flag, v))
        if args.min_child_weight < 0 or args.reg_lambda < 0:
            raise TrainError("--min-child-weight and --lambda must be >= 0")
        params = {
            "max_depth": args.max_depth,
            "eta": args.eta,
            "min_child_weight": args.min_child_weight,
            "subsample": args.subsample,
            "colsample_bytree": args.colsample_bytree,
            "lambda": args.reg_lambda,
        }
        propensity.train_xgboost(args, "train_gbm.py", params, args.rounds, args.early_stopping)

    propensity.run(run, "train_gbm.py")


if __name__ == "__main__":
    main()
