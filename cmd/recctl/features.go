package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models/features"
)

func runFeatures(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "features")
	data := fs.String("data", "", "canonical data set directory (required)")
	out := fs.String("out", "", "output CSV: user_id,item_id,cut,label, then every feature (required)")
	window := fs.Float64("window-days", 7, "label window: a row is positive when the user buys the item within this many days after its cut")
	cuts := fs.Int("cuts", 4, "consecutive label windows ending at the last event; features of each come only from events before it")
	negItems := fs.Int("neg-items", 4, "negative items per positive (same user)")
	hard := fs.Float64("hard-frac", 0.5, "share of negative items drawn from items the user touched without buying")
	negUsers := fs.Int("neg-users", 1, "negative users per positive (same item)")
	seed := fs.Uint64("seed", 1, "random seed of the negative sampling")
	list := fs.Bool("list", false, "print the feature names and exit")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *list {
		fmt.Fprintln(e.stdout, strings.Join(features.Names(), "\n"))
		return nil
	}
	if err := required(fs, "data", "out"); err != nil {
		return err
	}
	if *window <= 0 || *cuts < 1 || *negItems < 0 || *negUsers < 0 || *hard < 0 || *hard > 1 {
		return fmt.Errorf("%w: features: --window-days and --cuts must be positive, --neg-* non-negative, --hard-frac in [0,1]", errUsage)
	}
	d, err := dataset.Read(*data)
	if err != nil {
		return err
	}
	opts := features.ExportOptions{
		WindowDays: *window,
		Cuts:       *cuts,
		Sample: features.SampleOptions{
			NegItems: orNone(*negItems), HardFrac: orNoneF(*hard), NegUsers: orNone(*negUsers), Seed: *seed,
		},
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	var sum features.ExportSummary
	err = dataset.WriteFileAtomic(*out, func(w io.Writer) error {
		sum, err = features.Export(ctx, w, d, opts)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %d rows (%d positive, %.1f%%) over %d cuts, %d features, to %s\n",
		sum.Rows, sum.Positives, 100*float64(sum.Positives)/float64(sum.Rows), len(sum.Cuts), len(features.Names()), *out)
	return nil
}

// orNone maps a user's explicit 0 to the sampler's "none" (negative); the
// sampler reads 0 as "default".
func orNone(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func orNoneF(f float64) float64 {
	if f == 0 {
		return -1
	}
	return f
}
