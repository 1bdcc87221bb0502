package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/builtin"
	"github.com/recserve/recserve/models/features"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/server/router"
	"github.com/recserve/recserve/store"
)

// Config is the whole configuration of a recserve process.
type Config struct {
	// Addr is the listen address, host:port.
	Addr string
	// Repo is the model repository directory (models and routes.yaml).
	Repo string
	// Data is the data set directory the store loads.
	Data string
	// DebugAddr, when set, serves net/http/pprof on this address (keep it
	// private: it is not authenticated).
	DebugAddr string
	// Server configures the gRPC server.
	Server Options
}

// Validate reports a configuration that cannot start.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("addr: required"))
	}
	if c.Repo == "" {
		errs = append(errs, errors.New("repo: required"))
	}
	if c.Data == "" {
		errs = append(errs, errors.New("data: required"))
	}
	return errors.Join(errs...)
}

// Run serves until ctx is cancelled. It listens first, with health
// NOT_SERVING, then loads the store, the repository and the routes, and only
// then reports SERVING. Started is called, if set, with the bound address once
// the listener is open (tests use port 0).
func Run(ctx context.Context, cfg Config, log *slog.Logger, started func(addr net.Addr)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	if started != nil {
		started(lis.Addr())
	}
	// The router and repository are filled in below; the server answers
	// health checks (NOT_SERVING) meanwhile.
	lazy := &lazyDeps{}
	opts := cfg.Server
	opts.Logger = log
	srv := New(opts, lazy, lazy)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, lis) }()
	log.Info("listening", "addr", lis.Addr().String())
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			srv.grpc.Stop()
			<-serveErr
			return err
		}
		defer stopDebug()
	}

	repo, err := load(ctx, cfg, log, lazy)
	if err != nil {
		srv.grpc.Stop()
		<-serveErr
		if ctx.Err() != nil {
			return nil // shutdown requested while loading
		}
		return err
	}
	defer repo.Close()
	srv.SetServing(true)
	log.Info("serving", "addr", lis.Addr().String())
	return <-serveErr
}

func load(ctx context.Context, cfg Config, log *slog.Logger, lazy *lazyDeps) (*repository.Repository, error) {
	start := time.Now()
	d, err := dataset.Read(cfg.Data)
	if err != nil {
		return nil, fmt.Errorf("load data set: %w", err)
	}
	st := store.New(d)
	// Scorers read their inputs from a feature snapshot of the same data.
	feats := features.New(d.Items, d.Interactions, features.Options{})
	log.Info("data set loaded", "dir", cfg.Data, "users", st.Users(), "items", len(st.ItemIDs()), "events", st.Events(), "dur", time.Since(start))
	repo, err := repository.Open(ctx, repository.Options{
		Dir: cfg.Repo, Kinds: builtin.Kinds(), Env: models.Env{Logger: log, Features: feats}, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("open model repository: %w", err)
	}
	rcfg, err := router.LoadConfig(filepath.Join(cfg.Repo, router.ConfigFile))
	if err != nil {
		repo.Close()
		return nil, fmt.Errorf("load routes: %w", err)
	}
	r, err := router.New(router.Options{Models: repo, Store: st, Config: rcfg, Logger: log})
	if err != nil {
		repo.Close()
		return nil, err
	}
	for _, in := range repo.List() {
		log.Info("model", "name", in.Name, "kind", in.Kind, "version", in.ActiveVersion, "state", in.State.String(), "err", in.Err)
	}
	lazy.set(r, repo)
	return repo, nil
}
