package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/recserve/recserve/training/eval"
	"github.com/recserve/recserve/training/trainer"
)

func runTrain(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(e.stderr, "usage: recctl train KIND --data DIR --out REPO/NAME/VERSION [--param k=v ...]\nkinds: %s\n", strings.Join(trainer.Trainable(), ", "))
		return errUsage
	}
	kind := args[0]
	fs := newFlags(e, "train "+kind)
	data := fs.String("data", "", "training data set directory (required)")
	out := fs.String("out", "", "version directory to create, REPO/NAME/VERSION (required)")
	var params repeated
	fs.Var(&params, "param", "model parameter key=value (repeatable)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if err := required(fs, "data", "out"); err != nil {
		return err
	}
	p, err := trainer.ParseParams(params)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	spec, err := trainer.Run(ctx, trainer.Job{Kind: kind, DataDir: *data, Out: *out, Params: p})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "trained %s into %s in %.2fs\n", kind, *out, spec.Metadata["training_seconds"])
	return nil
}

func runEval(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "eval")
	var o eval.Options
	fs.StringVar(&o.Repo, "repo", "", "model repository (required)")
	fs.StringVar(&o.Train, "train", "", "training data set directory (required)")
	fs.StringVar(&o.Test, "test", "", "test data set directory (required)")
	fs.IntVar(&o.K, "k", 10, "cut-off K")
	fs.BoolVar(&o.Routes, "routes", false, "also evaluate every route of REPO/routes.yaml")
	fs.BoolVar(&o.ColdItems, "cold-items", false, "count only test items absent from train")
	fs.BoolVar(&o.NextItem, "next-item", false, "count only each user's next item: the first test item not touched in train")
	var only stringList
	fs.Var(&only, "models", "evaluate only these models (comma-separated)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "repo", "train", "test"); err != nil {
		return err
	}
	if o.K < 1 {
		return fmt.Errorf("%w: --k must be positive", errUsage)
	}
	o.Models = only
	rep, err := eval.Run(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	k := rep.K
	fmt.Fprintf(tw, "\tP@%d\tR@%d\tNDCG@%d\tMAP@%d\tHR@%d\tcoverage\tusers\t\n", k, k, k, k, k)
	for _, r := range rep.Results {
		name := r.Model
		if r.Route != "" {
			name = "route:" + r.Route
		}
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%d\t\n", name, r.Precision, r.Recall, r.NDCG, r.MAP, r.HitRate, r.Coverage, r.Users)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Scorers) > 0 {
		fmt.Fprintln(e.stdout, "\npurchase propensity (test purchases against sampled negatives):")
		fmt.Fprintf(tw, "scorer\tAUC\tlog loss\texamples\tpositives\t\n")
		for _, s := range rep.Scorers {
			ll := "-"
			if s.LogLoss != nil {
				ll = fmt.Sprintf("%.4f", *s.LogLoss)
			}
			fmt.Fprintf(tw, "%s\t%.4f\t%s\t%d\t%d\t\n", s.Model, s.AUC, ll, s.Examples, s.Positives)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for name, why := range rep.Skipped {
		fmt.Fprintf(e.stderr, "skipped %s: %s\n", name, why)
	}
	return nil
}
