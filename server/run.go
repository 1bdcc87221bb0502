package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/builtin"
	"github.com/recserve/recserve/models/features"
	"github.com/recserve/recserve/models/onnx"
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
	// ONNXRuntimeLib is the onnxruntime shared library the onnx model kind
	// runs on; empty finds it with onnx.FindLibrary ($ONNXRUNTIME_LIB, else
	// .ort/libonnxruntime.so.1 from `make ort`). Without it onnx models fail
	// to load and every other model serves.
	ONNXRuntimeLib string
	// RoutesReload is how often <repo>/routes.yaml is checked for changes
	// (0 means DefaultRoutesReload; negative turns reloading off).
	RoutesReload time.Duration
	// RepoPoll, when positive, rescans the repository directory this often
	// and applies what changed on disk (repository.Sync): versions copied in
	// by another replica or a deploy job. 0 turns polling off.
	RepoPoll time.Duration
	// MaxUploadBytes bounds one DeployModel upload (0 means
	// repository.DefaultMaxUploadBytes).
	MaxUploadBytes int64
	// TLSCertFile and TLSKeyFile, both or neither, are the PEM certificate
	// chain and private key to serve TLS with; neither serves plaintext.
	// Server.TLS, when set, wins.
	TLSCertFile string
	TLSKeyFile  string
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
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls-cert and tls-key: give both or neither"))
	}
	if c.MaxUploadBytes < 0 {
		errs = append(errs, fmt.Errorf("max-upload-bytes: %d is negative", c.MaxUploadBytes))
	}
	if c.RepoPoll < 0 {
		errs = append(errs, fmt.Errorf("repo-poll: %v is negative", c.RepoPoll))
	}
	if err := checkToken(c.Server.AdminToken); err != nil {
		errs = append(errs, fmt.Errorf("admin token (%s): %w", AdminTokenEnv, err))
	}
	return errors.Join(errs...)
}

// checkToken rejects a token that cannot travel in a gRPC metadata value as
// one bearer token: only printable ASCII without spaces is allowed.
func checkToken(tok string) error {
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return errors.New("must be printable ASCII without spaces")
		}
	}
	return nil
}

// tlsConfig loads the configured certificate, or returns nil for plaintext.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
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
	opts := cfg.Server
	opts.Logger = log
	if opts.TLS == nil {
		tc, err := cfg.tlsConfig()
		if err != nil {
			return err
		}
		opts.TLS = tc
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
	srv := New(opts, lazy, lazy)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, lis) }()
	log.Info("listening", "addr", lis.Addr().String(), "tls", opts.TLS != nil, "model_management", opts.AdminToken != "")
	if opts.AdminToken != "" && opts.TLS == nil && !loopback(lis.Addr()) {
		log.Warn("the admin token travels in plaintext: serve TLS (--tls-cert, --tls-key) on a non-loopback address")
	}
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log, lazy)
		if err != nil {
			srv.grpc.Stop()
			<-serveErr
			return err
		}
		defer stopDebug()
	}

	kinds, closeONNX := onnxKinds(cfg, log)
	defer closeONNX() // after repo.Close (deferred below): models first
	repo, err := load(ctx, cfg, log, lazy, kinds)
	if err != nil {
		srv.grpc.Stop()
		<-serveErr
		if ctx.Err() != nil {
			return nil // shutdown requested while loading
		}
		return err
	}
	defer repo.Close()
	if cfg.RoutesReload >= 0 {
		interval := cfg.RoutesReload
		if interval == 0 {
			interval = DefaultRoutesReload
		}
		wctx, stopWatch := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			watchRoutes(wctx, filepath.Join(cfg.Repo, router.ConfigFile), lazy.r.Load(), interval, log)
		}()
		defer func() { stopWatch(); <-watched }()
	}
	if cfg.RepoPoll > 0 {
		pctx, stopPoll := context.WithCancel(ctx)
		polled := make(chan struct{})
		go func() {
			defer close(polled)
			pollRepository(pctx, repo, cfg.RepoPoll, log)
		}()
		defer func() { stopPoll(); <-polled }()
	}
	srv.SetServing(true)
	log.Info("serving", "addr", lis.Addr().String())
	return <-serveErr
}

// onnxKinds loads onnxruntime for the onnx model kind and returns the model
// kinds with it, and the function releasing it at exit. A library that is
// missing or fails to load is a warning, not an error: the onnx models then
// fail to load with the reason, and the Go-native models serve.
func onnxKinds(cfg Config, log *slog.Logger) (*models.Kinds, func()) {
	path, err := cfg.ONNXRuntimeLib, error(nil)
	if path == "" {
		path, err = onnx.FindLibrary()
	}
	var rt *onnx.Runtime
	if err == nil {
		rt, err = onnx.NewRuntime(path)
	}
	if err != nil {
		log.Warn("onnxruntime not loaded: onnx models will not load (run `make ort` or set "+onnx.LibraryEnv+")", "err", err)
		return builtin.Kinds(builtin.WithONNX(nil, err)), func() {}
	}
	log.Info("onnxruntime loaded", "onnxruntime", rt.Version(), "lib", rt.Path())
	return builtin.Kinds(builtin.WithONNX(rt, nil)), func() {
		if err := rt.Close(); err != nil {
			log.Warn("onnxruntime close", "err", err)
		}
	}
}

func load(ctx context.Context, cfg Config, log *slog.Logger, lazy *lazyDeps, kinds *models.Kinds) (*repository.Repository, error) {
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
		Dir: cfg.Repo, Kinds: kinds, Env: models.Env{Logger: log, Features: feats}, Logger: log,
		MaxUploadBytes: cfg.MaxUploadBytes, Probe: probe(ctx, d, st),
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

// syncer is what pollRepository needs of the repository.
type syncer interface {
	Sync(ctx context.Context) error
}

// pollRepository calls repo.Sync every interval until ctx is done. A failed
// sync is logged and retried at the next tick: the models already serving
// keep serving.
func pollRepository(ctx context.Context, repo syncer, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := repo.Sync(ctx); err != nil && ctx.Err() == nil {
			log.Error("repository sync failed; the models serving are unchanged", "err", err)
		}
	}
}

// Probe sizes: the history of the probe user is its newest events, and the
// probe scores the most popular items.
const (
	probeHistory = 50
	probeItems   = 20
)

// probe builds the request a new model version must answer before it may
// serve, from the data set: the most active user's history and the most
// interacted-with items, so validation exercises a model on the inputs it
// will see. It returns nil (the repository's cold-start probe) for a data set
// without interactions.
func probe(ctx context.Context, d *dataset.Dataset, st *store.Memory) *repository.Probe {
	if len(d.Interactions) == 0 {
		return nil
	}
	users, items := map[string]int{}, map[string]int{}
	for _, in := range d.Interactions {
		users[in.UserID]++
		items[in.ItemID]++
	}
	user := ""
	for u, n := range users {
		if n > users[user] || n == users[user] && u < user {
			user = u
		}
	}
	hist, err := st.History(ctx, user)
	if err != nil {
		return nil
	}
	hist = hist[max(0, len(hist)-probeHistory):]
	ids := make([]string, 0, len(items))
	for id := range items {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := cmp.Compare(items[b], items[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return &repository.Probe{
		Query: models.Query{UserID: user, History: slices.Clone(hist), K: 10},
		Items: ids[:min(probeItems, len(ids))],
	}
}

// loopback reports whether addr is a loopback TCP address.
func loopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
