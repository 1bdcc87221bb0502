package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/recserve/recserve/training/predict"
)

func runPredict(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "predict")
	modelDir := fs.String("model", "", "model version directory holding model.yaml (required)")
	in := fs.String("in", "", "input CSV whose header names the model's features; an empty cell is a missing value (required)")
	out := fs.String("out", "", "output CSV of predictions (required)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "scoring goroutines")
	idColumn := fs.String("id-column", "", "input column copied to the output before the predictions")
	chunkRows := fs.Int("chunk-rows", 4096, "rows read, scored and written as one unit; memory holds a few chunks per worker")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "model", "in", "out"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: predict: unexpected arguments %q", errUsage, fs.Args())
	}
	if *workers < 1 || *chunkRows < 1 {
		return fmt.Errorf("%w: --workers and --chunk-rows must be positive", errUsage)
	}
	m, err := predict.Load(ctx, *modelDir)
	if err != nil {
		return err
	}
	defer m.Close()
	n, err := predict.File(ctx, m, *in, *out, predict.Options{Workers: *workers, IDColumn: *idColumn, ChunkRows: *chunkRows})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %d predictions to %s\n", n, *out)
	return nil
}
