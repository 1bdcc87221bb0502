package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/recserve/recserve/dataset"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
	"github.com/recserve/recserve/serving"
	"github.com/recserve/recserve/serving/store"
)

// runExport writes the canonical data set of a live state store, the first
// step of the retraining loop (export → make train → recctl deploy): from a
// running server (EventService/Export, admin token; the way to export the
// embedded Pebble store of a server that keeps serving), or straight from a
// Redis store or a Pebble directory no server has open.
func runExport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "export")
	var cf clientFlags
	cf.registerTimeout(fs, adminTimeout)
	state := fs.String("state", "", "read this Pebble state directory (of a stopped server) instead of a server")
	url := fs.String("store", "", "read this Redis state store, redis://HOST:PORT/DB, instead of a server")
	out := fs.String("out", "", "directory to write interactions.csv and items.csv to (required)")
	types := fs.String("event-types", "", "the server's --event-types (custom types export as ratings valued at their weight; negative ones are left out)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "out"); err != nil {
		return err
	}
	if *state != "" && *url != "" {
		return fmt.Errorf("%w: export: give --state DIR or --store URL, not both", errUsage)
	}
	et, err := store.ParseEventTypes(*types)
	if err != nil {
		return fmt.Errorf("%w: export: --event-types: %w", errUsage, err)
	}
	var d *dataset.Dataset
	if *state != "" || *url != "" {
		d, err = exportStore(ctx, *state, *url, et)
	} else {
		d, err = exportServer(ctx, e, &cf, et)
	}
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

// exportStore reads a state store directly.
func exportStore(ctx context.Context, state, url string, types store.EventTypes) (*dataset.Dataset, error) {
	b, err := serving.OpenBackend(ctx, state, url, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	d, _, err := store.Read(ctx, b, types)
	return d, errors.Join(err, b.Close())
}

// exportServer reads a running server's state through EventService/Export.
func exportServer(ctx context.Context, e *env, cf *clientFlags, types store.EventTypes) (*dataset.Dataset, error) {
	conn, ctx, done, err := cf.adminConnect(ctx, e)
	if err != nil {
		return nil, err
	}
	defer done()
	stream, err := pb.NewEventServiceClient(conn).Export(ctx, &pb.ExportRequest{})
	if err != nil {
		return nil, err
	}
	d := &dataset.Dataset{}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		if err != nil {
			return nil, err
		}
		for _, it := range chunk.GetItems() {
			d.Items = append(d.Items, server.FromProtoItem(it))
		}
		for _, pe := range chunk.GetEvents() {
			if in, ok := types.Interaction(server.FromProtoEvent(pe)); ok {
				d.Interactions = append(d.Interactions, in)
			}
		}
	}
}
