// Command recserve serves recommendation and scoring models over gRPC.
//
//	recserve [--addr HOST:PORT] [--repo DIR] [--data DIR] [--tls-cert FILE --tls-key FILE]
//
// Flags default to $RECSERVE_ADDR, $RECSERVE_REPO and $RECSERVE_DATA, then to
// localhost:50051 and the demo repository and data set. $RECSERVE_ADMIN_TOKEN
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

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
