package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving"
	"github.com/recserve/recserve/serving/store"
)

// runExport writes the canonical data set of a live state store, the first
// step of the retraining loop (export → make train → recctl deploy). A
// running server may hold a Pebble directory locked: export a Redis store
// live, a Pebble one from a stopped server or a copy.
func runExport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "export")
	state := fs.String("state", "", "Pebble state directory to read")
	url := fs.String("store", "", "Redis state store to read, redis://HOST:PORT/DB")
	out := fs.String("out", "", "directory to write interactions.csv and items.csv to (required)")
	types := fs.String("event-types", "", "the server's --event-types (custom types export as ratings valued at their weight; negative ones are left out)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "out"); err != nil {
		return err
	}
	if (*state == "") == (*url == "") {
		return fmt.Errorf("%w: export: give --state DIR or --store URL", errUsage)
	}
	et, err := store.ParseEventTypes(*types)
	if err != nil {
		return fmt.Errorf("%w: export: --event-types: %w", errUsage, err)
	}
	b, err := serving.OpenBackend(ctx, *state, *url, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	d, _, err := store.Read(ctx, b, et)
	err = errors.Join(err, b.Close())
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := dataset.Write(*out, d); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	users := map[string]struct{}{}
	for _, in := range d.Interactions {
		users[in.UserID] = struct{}{}
	}
	fmt.Fprintf(e.stdout, "exported %d users, %d items, %d interactions to %s\n", len(users), len(d.Items), len(d.Interactions), *out)
	return nil
}
