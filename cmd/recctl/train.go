package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

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
	fs.StringVar(&o.Repo, "repo", "", "model repository (required, except with --impressions)")
	fs.StringVar(&o.Train, "train", "", "training data set directory (required, except with --impressions)")
	fs.StringVar(&o.Test, "test", "", "test data set directory (required, except with --impressions)")
	fs.IntVar(&o.K, "k", 10, "cut-off K")
	fs.BoolVar(&o.Routes, "routes", false, "also evaluate every route of REPO/routes.yaml")
	fs.BoolVar(&o.ColdItems, "cold-items", false, "count only test items absent from train")
	fs.BoolVar(&o.NextItem, "next-item", false, "count only each user's next item: the first test item not touched in train")
	var only, logs stringList
	fs.Var(&only, "models", "evaluate only these models (comma-separated)")
	fs.Var(&logs, "impressions", "replay impression logs (comma-separated files, with their rotated backups, or globs): the logged arms' click-through, beside their routes' offline metrics when --repo, --train and --test are given")
	since := fs.String("since", "", "with --impressions: first answer time, RFC 3339 or a duration ago (24h)")
	until := fs.String("until", "", "with --impressions: end of the answers' time, exclusive, as --since (default now)")
	var oo eval.OnlineOptions
	fs.StringVar(&oo.Metric, "metric", "", "with --impressions: metric of the experiments' verdicts: ctr (default), conversion or revenue")
	fs.Float64Var(&oo.Alpha, "alpha", 0, "with --impressions: significance level (default 0.05)")
	fs.Int64Var(&oo.MinUsers, "min-users", 0, "with --impressions: per-arm users below which no winner is called (default: sized to detect a 20% lift)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.K < 1 {
		return fmt.Errorf("%w: --k must be positive", errUsage)
	}
	if len(logs) > 0 {
		return runEvalImpressions(ctx, e, fs, logs, o, oo, *since, *until, *asJSON)
	}
	if err := required(fs, "repo", "train", "test"); err != nil {
		return err
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

// runEvalImpressions is `recctl eval --impressions`: the logged answers per
// experiment arm and route (eval.Replay), with the routes' offline metrics
// when the data to evaluate them is given.
func runEvalImpressions(ctx context.Context, e *env, fs *flag.FlagSet, logs []string, o eval.Options, oo eval.OnlineOptions, since, until string, asJSON bool) error {
	var set []string
	fs.Visit(func(f *flag.Flag) { set = append(set, f.Name) })
	for _, name := range []string{"routes", "models"} {
		if slices.Contains(set, name) {
			return fmt.Errorf("%w: --%s does not apply with --impressions (the log's routes are evaluated)", errUsage, name)
		}
	}
	n := 0
	for _, name := range []string{"repo", "train", "test"} {
		if slices.Contains(set, name) {
			n++
		}
	}
	if n != 0 && n != 3 {
		return fmt.Errorf("%w: with --impressions give all of --repo, --train and --test (offline metrics beside the log's) or none", errUsage)
	}
	switch {
	case oo.Alpha < 0 || oo.Alpha >= 1:
		return fmt.Errorf("%w: --alpha %g is not in (0, 1)", errUsage, oo.Alpha)
	case oo.MinUsers < 0:
		return fmt.Errorf("%w: --min-users %d is negative", errUsage, oo.MinUsers)
	}
	oo.Now = time.Now()
	if n == 3 {
		oo.Offline = o
	}
	for _, f := range []struct {
		name, val string
		dst       *time.Time
	}{{"since", since, &oo.Since}, {"until", until, &oo.Until}} {
		if f.val == "" {
			continue
		}
		t, err := parseWhen(f.val, oo.Now)
		if err != nil {
			return fmt.Errorf("%w: --%s: %v", errUsage, f.name, err)
		}
		*f.dst = t
	}
	rep, err := eval.Replay(ctx, logs, oo)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printOnline(e, &rep)
}

// printOnline prints an eval.OnlineReport: what was read, then one table per
// experiment and one for the answers no experiment routed.
func printOnline(e *env, rep *eval.OnlineReport) error {
	if l := rep.Log; l != nil {
		files := "files"
		if len(l.Files) == 1 {
			files = "file"
		}
		fmt.Fprintf(e.stdout, "read %d answers and %d attributed events from %d %s", l.Impressions, l.Outcomes, len(l.Files), files)
		if l.Impressions > 0 {
			fmt.Fprintf(e.stdout, " (answers %s to %s)", l.First.Format(time.RFC3339), l.Last.Format(time.RFC3339))
		}
		fmt.Fprintln(e.stdout)
		if l.Anonymous > 0 {
			fmt.Fprintf(e.stdout, "%d answers to anonymous shoppers are not counted: reports count users\n", l.Anonymous)
		}
		if l.Orphans > 0 {
			fmt.Fprintf(e.stdout, "%d events are attributed to answers not in these files (another replica's log?) and are not counted\n", l.Orphans)
		}
	}
	span := "from the start of the log"
	if !rep.Since.IsZero() {
		span = "since " + rep.Since.Format(time.RFC3339)
	}
	fmt.Fprintf(e.stdout, "answers %s until %s\n", span, rep.Until.Format(time.RFC3339))
	if len(rep.Tables) == 0 {
		fmt.Fprintln(e.stdout, "no answers of identified users in that time")
	}
	k := rep.K
	for _, t := range rep.Tables {
		fmt.Fprintln(e.stdout)
		if t.Experiment != "" {
			fmt.Fprintf(e.stdout, "experiment %s: %d answers; control %s, verdict on %s at alpha %g, min %d users per arm\n", t.Experiment, t.Answers, dash(t.Control), t.Metric, t.Alpha, t.MinUsers)
		} else {
			fmt.Fprintf(e.stdout, "answers no experiment routed: %d\n", t.Answers)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		head := "arm\troute\tusers\tanswers\tCTR [CI]\tconversion [CI]"
		if k > 0 {
			head += fmt.Sprintf("\tNDCG@%d\tR@%d\tHR@%d", k, k, k)
		}
		if t.Experiment != "" {
			head += "\tverdict"
		}
		fmt.Fprintln(tw, head)
		for _, r := range t.Rows {
			line := fmt.Sprintf("%s\t%s\t%d\t%d\t%s\t%s", dash(r.Arm), r.Route, r.Users, r.Answers, estimatePercent(r.CTR), estimatePercent(r.Conversion))
			if k > 0 {
				if r.Offline != nil {
					line += fmt.Sprintf("\t%.4f\t%.4f\t%.4f", r.Offline.NDCG, r.Offline.Recall, r.Offline.HitRate)
				} else {
					line += "\t-\t-\t-"
				}
			}
			if t.Experiment != "" {
				line += "\t" + r.Verdict
			}
			fmt.Fprintln(tw, line)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rep.Skipped)) {
		fmt.Fprintf(e.stderr, "not evaluated offline: %s: %s\n", name, rep.Skipped[name])
	}
	return nil
}

// estimatePercent prints a rate and its interval in percent.
func estimatePercent(est eval.Estimate) string {
	return fmt.Sprintf("%.2f%% [%.2f, %.2f]", 100*est.Value, 100*est.Low, 100*est.High)
}
