// Command recserve serves recommendation and scoring models over gRPC.
//
//	recserve [--addr HOST:PORT] [--repo DIR] [--data DIR] [--state DIR | --store redis://HOST:PORT/DB]
//	         [--tls-cert FILE --tls-key FILE]
//
// Flags default to $RECSERVE_ADDR, $RECSERVE_REPO, $RECSERVE_DATA and
// $RECSERVE_STATE, then to localhost:50051 and the demo repository, data set
// and state directory (var/demo/state, seeded from the data set on first
// start). $RECSERVE_ADMIN_TOKEN
// is the bearer token the model-management RPCs (DeployModel,
// ActivateVersion, Rollback, UnloadModel) require; without it they are
// refused.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/server"
	"github.com/recserve/recserve/serving"
	"github.com/recserve/recserve/serving/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "recserve:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := server.Config{Server: server.DefaultOptions()}
	fs := flag.NewFlagSet("recserve", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", env("RECSERVE_ADDR", "localhost:50051"), "listen address (env RECSERVE_ADDR)")
	fs.StringVar(&cfg.Repo, "repo", env("RECSERVE_REPO", "var/demo/repo"), "model repository directory (env RECSERVE_REPO)")
	fs.StringVar(&cfg.Data, "data", env("RECSERVE_DATA", "var/demo/data"), "data set directory (env RECSERVE_DATA)")
	fs.StringVar(&cfg.State, "state", env("RECSERVE_STATE", "var/demo/state"), "Pebble directory of the embedded state store, seeded from --data on first start (env RECSERVE_STATE; empty with no --store: a read-only snapshot of --data)")
	fs.StringVar(&cfg.StoreURL, "store", env("RECSERVE_STORE", ""), "shared Redis state store, redis://HOST:PORT/DB, instead of --state (env RECSERVE_STORE)")
	windows := fs.String("attribution-windows", env("RECSERVE_ATTRIBUTION_WINDOWS", ""), "how long after an answer an event on a shown item without a recommendation_id is attributed to it: click=DURATION,purchase=DURATION (default click=30m,purchase=168h)")
	storeImpressions := fs.Bool("store-impressions", true, "keep every answer in the state store as an impression, for attribution and experiment reports (false: to measure what that costs)")
	eventTypes := fs.String("event-types", env("RECSERVE_EVENT_TYPES", ""), "extra event types Track accepts: name=weight or name=negative, comma-separated (dislike and return are negative by default)")
	fs.StringVar(&cfg.ImpressionLog, "impression-log", env("RECSERVE_IMPRESSION_LOG", ""), "append every answer's impression (recommendation_id, user, route, arm, models, items) to this JSON-lines file, rotated by size (env RECSERVE_IMPRESSION_LOG; off when empty)")
	fs.IntVar(&cfg.ImpressionLogMaxMB, "impression-log-max-mb", 0, "rotate the impression log at this many megabytes (0: 100)")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", env("RECSERVE_DEBUG_ADDR", ""), "serve pprof and /metrics on this address (env RECSERVE_DEBUG_ADDR; off when empty)")
	fs.DurationVar(&cfg.RoutesReload, "routes-reload", serving.DefaultRoutesReload, "how often <repo>/routes.yaml is checked for changes; an invalid file keeps the previous routes (negative: never)")
	fs.BoolVar(&cfg.Server.Reflection, "reflection", true, "register gRPC server reflection")
	fs.DurationVar(&cfg.Server.ShutdownTimeout, "shutdown-timeout", cfg.Server.ShutdownTimeout, "how long in-flight calls may drain on shutdown")
	fs.IntVar(&cfg.Server.StreamWorkers, "stream-workers", cfg.Server.StreamWorkers, "goroutines pooled to run RPCs (size to the expected concurrency)")
	fs.IntVar(&cfg.Server.MaxRecvMsgBytes, "max-recv-bytes", cfg.Server.MaxRecvMsgBytes, "largest request message accepted")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "PEM certificate chain to serve TLS with (with --tls-key; plaintext when both are empty)")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.Int64Var(&cfg.MaxUploadBytes, "max-upload-bytes", repository.DefaultMaxUploadBytes, "largest model version DeployModel accepts, in bytes")
	fs.DurationVar(&cfg.RepoPoll, "repo-poll", 0, "rescan the model repository for versions changed on disk this often (0: never)")
	logLevel := fs.String("log-level", env("RECSERVE_LOG_LEVEL", "info"), "debug, info, warn or error")
	logJSON := fs.Bool("log-json", false, "log JSON instead of text")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if cfg.StoreURL != "" && !explicit(fs, "state") {
		cfg.State = "" // --store replaces the default --state
	}
	types, err := store.ParseEventTypes(*eventTypes)
	if err != nil {
		return fmt.Errorf("--event-types: %w", err)
	}
	cfg.EventTypes = types
	cfg.NoImpressions = !*storeImpressions
	if cfg.Windows, err = store.ParseWindows(*windows); err != nil {
		return fmt.Errorf("--attribution-windows: %w", err)
	}
	cfg.Server.AdminToken = os.Getenv(server.AdminTokenEnv)
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if *logJSON {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.Run(ctx, cfg, slog.New(h), nil)
}

// explicit reports whether the command line set flag name.
func explicit(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
