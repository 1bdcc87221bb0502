package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/importer"
	"github.com/recserve/recserve/training/split"
)

func runDatagen(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "datagen")
	out := fs.String("out", "", "output data set directory (required)")
	var cfg datagen.Config
	fs.IntVar(&cfg.Users, "users", 5000, "number of users")
	fs.IntVar(&cfg.Items, "items", 2000, "number of items")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed; the same seed gives the same data")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "out"); err != nil {
		return err
	}
	start := time.Now()
	d, err := datagen.Generate(cfg)
	if err != nil {
		return err
	}
	if err := dataset.Write(*out, d); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s: %d users, %d items, %d interactions in %s\n",
		*out, countUsers(d), len(d.Items), len(d.Interactions), time.Since(start).Round(time.Millisecond))
	return nil
}

func countUsers(d *dataset.Dataset) int {
	users := map[string]struct{}{}
	for _, in := range d.Interactions {
		users[in.UserID] = struct{}{}
	}
	return len(users)
}

func runImport(_ context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.stderr, "usage: recctl import movielens|retailrocket|csv --in PATH --out DIR [--skip-bad] [--map user=COL,item=COL,...]")
		return errUsage
	}
	format := args[0]
	fs := newFlags(e, "import "+format)
	in := fs.String("in", "", "input file or directory (required)")
	out := fs.String("out", "", "output data set directory (required)")
	skipBad := fs.Bool("skip-bad", false, "skip and count malformed lines instead of failing")
	mapping := fs.String("map", "", "csv only: column mapping, e.g. user=uid,item=sku,event=type,value=qty,timestamp=ts,session=sid")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if err := required(fs, "in", "out"); err != nil {
		return err
	}
	opt := importer.Options{SkipBad: *skipBad}
	var (
		d   *dataset.Dataset
		st  importer.Stats
		err error
	)
	switch format {
	case "movielens":
		d, st, err = importer.MovieLens(*in, opt)
	case "retailrocket":
		d, st, err = importer.RetailRocket(*in, opt)
	case "csv":
		m, merr := importer.ParseMapping(*mapping)
		if merr != nil {
			return fmt.Errorf("%w: --map: %v", errUsage, merr)
		}
		d, st, err = importer.CSV(*in, m, opt)
	default:
		return fmt.Errorf("%w: unknown import format %q (movielens, retailrocket, csv)", errUsage, format)
	}
	if err != nil {
		return err
	}
	if err := dataset.Write(*out, d); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "imported %d interactions, %d items into %s (%d lines read, %d skipped)\n",
		len(d.Interactions), len(d.Items), *out, st.Lines, st.Skipped)
	return nil
}

func runSplit(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "split")
	in := fs.String("in", "", "input data set directory (required)")
	out := fs.String("out", "", "output directory; train/ and test/ are written inside (required)")
	method := fs.String("method", "time", "time (each user's latest events are test) or random")
	frac := fs.Float64("test-frac", 0.2, "fraction of each user's events held out")
	seed := fs.Int64("seed", 1, "random seed for --method random")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "in", "out"); err != nil {
		return err
	}
	d, err := dataset.Read(*in)
	if err != nil {
		return err
	}
	train, test, err := split.Split(d, split.Options{Method: split.Method(*method), TestFrac: *frac, Seed: *seed})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	for name, part := range map[string]*dataset.Dataset{"train": train, "test": test} {
		if err := dataset.Write(filepath.Join(*out, name), part); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "split %s (%s, test-frac %g): train %d, test %d interactions\n",
		*in, *method, *frac, len(train.Interactions), len(test.Interactions))
	return nil
}
