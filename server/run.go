package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/recserve/recserve/serving"
	"github.com/recserve/recserve/serving/impressionlog"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// Config is the whole configuration of a recserve process.
type Config struct {
	// Addr is the listen address, host:port.
	Addr string
	// Repo is the model repository directory (models and routes.yaml).
	Repo string
	// Data is the data set directory the store loads (with a state store:
	// seeds it on its first start).
	Data string
	// State is the Pebble directory of the embedded state store; StoreURL
	// (redis://HOST:PORT/DB) the Redis store replicas share. Both empty:
	// no state store, the store is a read-only snapshot of Data and
	// EventService writes are FailedPrecondition.
	State    string
	StoreURL string
	// EventTypes are the event types Track accepts (nil:
	// store.DefaultEventTypes).
	EventTypes store.EventTypes
	// Windows are the attribution windows (zero fields: the defaults, 30
	// minutes for clicks and 7 days for purchases).
	Windows store.Windows
	// NoImpressions keeps no impressions in the state store (no
	// attribution or experiment reports), to measure what they cost.
	NoImpressions bool
	// ImpressionLog, when set, is the JSON-lines file every answer's
	// impression is appended to (rotated at ImpressionLogMaxMB megabytes;
	// 0: impressionlog.DefaultMaxMB).
	ImpressionLog      string
	ImpressionLogMaxMB int
	// DebugAddr, when set, serves net/http/pprof and /metrics (the
	// process's Prometheus registry) on this address (keep it private: it is
	// not authenticated).
	DebugAddr string
	// Server configures the gRPC server.
	Server Options
	// ONNXRuntimeLib is the onnxruntime shared library the onnx model kind
	// runs on; empty finds it with onnx.FindLibrary ($ONNXRUNTIME_LIB, else
	// .ort/libonnxruntime.so.1 from `make ort`). Without it onnx models fail
	// to load and every other model serves.
	ONNXRuntimeLib string
	// RoutesReload is how often <repo>/routes.yaml is checked for changes
	// (0 means serving.DefaultRoutesReload; negative turns reloading off).
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
	if c.State != "" && c.StoreURL != "" {
		errs = append(errs, errors.New("state and store: give one or neither"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls-cert and tls-key: give both or neither"))
	}
	if c.MaxUploadBytes < 0 {
		errs = append(errs, fmt.Errorf("max-upload-bytes: %d is negative", c.MaxUploadBytes))
	}
	if c.ImpressionLogMaxMB < 0 {
		errs = append(errs, fmt.Errorf("impression-log-max-mb: %d is negative", c.ImpressionLogMaxMB))
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
// then reports SERVING. It creates the process's metrics registry and
// injects it into the serving core; DebugAddr serves it. Started is called,
// if set, with the bound address once the listener is open (tests use port
// 0).
func Run(ctx context.Context, cfg Config, log *slog.Logger, started func(addr net.Addr)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := cfg.Server
	opts.Logger = log
	reg, err := newRegistry()
	if err != nil {
		return err
	}
	opts.Registerer = reg
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
	srv, err := New(opts, lazy, lazy, lazy)
	if err != nil {
		lis.Close()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, lis) }()
	log.Info("listening", "addr", lis.Addr().String(), "tls", opts.TLS != nil, "model_management", opts.AdminToken != "")
	if opts.AdminToken != "" && opts.TLS == nil && !loopback(lis.Addr()) {
		log.Warn("the admin token travels in plaintext: serve TLS (--tls-cert, --tls-key) on a non-loopback address")
	}
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log, reg)
		if err != nil {
			srv.grpc.Stop()
			<-serveErr
			return err
		}
		defer stopDebug()
	}

	var impressions router.ImpressionLog
	if cfg.ImpressionLog != "" {
		il, err := impressionlog.Open(impressionlog.Options{Path: cfg.ImpressionLog, MaxMB: cfg.ImpressionLogMaxMB, Logger: log})
		if err != nil {
			srv.grpc.Stop()
			<-serveErr
			return err
		}
		defer il.Close() // after the stack (deferred later, run earlier)
		impressions = il
	}
	backend, err := serving.OpenBackend(ctx, cfg.State, cfg.StoreURL, log)
	if err != nil {
		srv.grpc.Stop()
		<-serveErr
		return err
	}
	stack, err := serving.Open(ctx, serving.Options{
		Repo: cfg.Repo, Data: cfg.Data, ONNXRuntimeLib: cfg.ONNXRuntimeLib,
		MaxUploadBytes: cfg.MaxUploadBytes, Logger: log, Registerer: reg,
		Backend: backend, EventTypes: cfg.EventTypes, Windows: cfg.Windows, NoImpressions: cfg.NoImpressions, Impressions: impressions,
	})
	if err != nil {
		srv.grpc.Stop()
		<-serveErr
		if ctx.Err() != nil {
			return nil // shutdown requested while loading
		}
		return err
	}
	defer stack.Close()
	lazy.set(stack)
	if cfg.RoutesReload >= 0 {
		wctx, stopWatch := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			stack.WatchRoutes(wctx, cfg.RoutesReload)
		}()
		defer func() { stopWatch(); <-watched }()
	}
	if cfg.RepoPoll > 0 {
		pctx, stopPoll := context.WithCancel(ctx)
		polled := make(chan struct{})
		go func() {
			defer close(polled)
			stack.PollRepository(pctx, cfg.RepoPoll)
		}()
		defer func() { stopPoll(); <-polled }()
	}
	srv.SetServing(true)
	log.Info("serving", "addr", lis.Addr().String())
	return <-serveErr
}

// loopback reports whether addr is a loopback TCP address.
func loopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
