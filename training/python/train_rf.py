#!/usr/bin/env python3
"""Train an XGBoost random-forest purchase-propensity scorer (kind gbm).

The forest is one boosting round of --trees parallel trees (num_parallel_tree)
with eta 1, row subsampling and per-split feature sampling, so the trees are
decorrelated and averaged as in a random forest; XGBoost's JSON stores it as
an ordinary tree ensemble, which recserve's gbm kind serves. Input, split,
printed metrics and the version directory are as for train_gbm.py:

  model.json   Booster.save_model JSON, with feature names
  model.yaml   kind: gbm, file: model.json, features, params.format, metadata

Each tree's leaves are one Newton step from base_score (set to the train
positive rate), so probabilities are less sharp than a boosted model's; use
train_gbm.py when calibration matters most.

Usage:
  /usr/bin/python3 training/python/train_rf.py --features features.csv \\
      --out repo/propensity_rf/1 [--valid-frac 0.2] [--seed 7] [--nthread 2] \\
      [--trees 200] [--max-depth 8] [--subsample 0.8] [--colsample-bynode 0.8] \\
      [--min-child-weight 1] [--lambda 1] [--exclude-columns a,b] [--force]
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
    p.add_argument("--trees", type=int, default=200, help="trees in the forest (num_parallel_tree)")
    p.add_argument("--max-depth", type=int, default=8, help="maximum tree depth")
    p.add_argument("--subsample", type=float, default=0.8, help="row sampling per tree, < 1")
    p.add_argument("--colsample-bynode", type=float, default=0.8, help="feature sampling per split, < 1")
    p.add_argument("--min-child-weight", type=float, default=1.0,
                   help="minimum hessian sum in a leaf (about 1/(p(1-p)) rows)")
    p.add_argument("--lambda", dest="reg_lambda", type=float, default=1.0, help="L2 regularisation of leaves")
    args = p.parse_args()

    def run():
        if args.trees < 1:
            raise TrainError("--trees %d: want at least 1" % args.trees)
        if args.max_depth < 1:
            raise TrainError("--max-depth %d: want at least 1" % args.max_depth)
        for flag, v in (("--subsample", args.subsample), ("--colsample-bynode", args.colsample_bynode)):
            if not 0 < v <= 1:
                raise TrainError("%s %g: want a fraction in (0, 1]" % (flag, v))
        if args.min_child_weight < 0 or args.reg_lambda < 0:
            raise TrainError("--min-child-weight and --lambda must be >= 0")
        if args.subsample == 1 and args.colsample_bynode == 1 and args.trees > 1:
            print("train_rf.py: warning: --subsample 1 and --colsample-bynode 1 grow %d identical trees"
                  % args.trees, file=sys.stderr)
        params = {
            "num_parallel_tree": args.trees,
            "eta": 1.0,
            "max_depth": args.max_depth,
            "subsample": args.subsample,
            "colsample_bynode": args.colsample_bynode,
            "min_child_weight": args.min_child_weight,
            "lambda": args.reg_lambda,
        }
        propensity.train_xgboost(args, "train_rf.py", params, 1, 0)

    propensity.run(run, "train_rf.py")


if __name__ == "__main__":
    main()
