// Package serving is recserve's transport-free core: a data set, the store
// over it, the feature pipeline, the model kinds, the model repository and the
// router, assembled in one place (Open). The gRPC server and the offline
// evaluator both call Open, so an offline number is what the server would
// answer. Nothing here knows of gRPC.
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/builtin"
	"github.com/recserve/recserve/models/features"
	"github.com/recserve/recserve/models/onnx"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// Options configures Open.
type Options struct {
	// Repo is the model repository directory (models and routes.yaml).
	Repo string
	// Data is the data set directory the store and the feature pipeline are
	// built from. Dataset, when set, is used instead (a caller that has read
	// the data set already, such as the evaluator).
	Data    string
	Dataset *dataset.Dataset
	// ONNXRuntimeLib is the onnxruntime shared library the onnx kind runs
	// on; empty finds it with onnx.FindLibrary. A library that is missing or
	// fails to load is logged: the onnx models then fail to load with the
	// reason and every other model serves.
	ONNXRuntimeLib string
	// MaxUploadBytes bounds one model upload (0 means
	// repository.DefaultMaxUploadBytes).
	MaxUploadBytes int64
	// Logger receives load and lifecycle logs; nil discards them.
	Logger *slog.Logger
	// Backend, when set, is the durable state store: the store is read from
	// it (seeded from Data or Dataset on its first start) and kept current
	// as events arrive (Stack.Live). Without one the store is a read-only
	// snapshot of the data set, as offline evaluation wants. Open takes
	// ownership: Stack.Close closes it.
	Backend store.Backend
	// EventTypes are the event types Live accepts (nil:
	// store.DefaultEventTypes).
	EventTypes store.EventTypes
	// Impressions, when set, receives every answer's impression (the
	// caller owns it and closes it after the Stack); if it is also an
	// OutcomeLog, the events attributed to them. With a Backend the
	// impressions are also stored for attribution and reports.
	Impressions router.ImpressionLog
	// Windows are the attribution windows of a live store (zero fields:
	// store.DefaultWindows).
	Windows store.Windows
	// NoImpressions stores no impressions in the live store (no
	// attribution, no experiment reports).
	NoImpressions bool
	// Registerer receives the core's metrics: the router's per route and
	// arm and per model version, and the batch histograms of batched model
	// versions. The process that serves them owns it (the server creates a
	// registry and exposes it on its debug address); nil, as offline
	// evaluation passes, exposes nothing and skips the batch histograms.
	Registerer prometheus.Registerer
}

// Stack is an assembled serving core. Its fields are set by Open and must not
// be replaced; the router and repository are safe for concurrent use.
type Stack struct {
	// Dataset is the data set the store and features were built from; nil
	// for a live store, whose state is the backend's (store.Read reads
	// it), so that millions of events are not held twice.
	Dataset *dataset.Dataset
	// Store holds the catalogue and user histories.
	Store *store.Memory
	// Live writes events and catalogue changes through to the backend and
	// into Store; nil without Options.Backend.
	Live *store.Live
	// Repository holds the model versions.
	Repository *repository.Repository
	// Router answers requests over Repository and Store.
	Router *router.Router
	// RoutesFile is the routes.yaml the router was configured from (it may
	// not exist: the default routes then serve).
	RoutesFile string

	log        *slog.Logger
	closeONNX  func()
	closeStore func()
}

// Open assembles the serving core: it reads the data set, indexes it into the
// store, builds the feature pipeline, loads onnxruntime for the onnx kind,
// opens the model repository (loading every model) and configures the router
// from the repository's routes.yaml. Close releases it.
func Open(ctx context.Context, o Options) (*Stack, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Repo == "" {
		return nil, errors.New("serving: a model repository is required")
	}
	start := time.Now()
	learn := &learner{} // bound to the repository once it is open
	outcomeLog, _ := o.Impressions.(OutcomeLog)
	outs, err := newOutcomes(o.Registerer, outcomeLog)
	if err != nil {
		if o.Backend != nil {
			o.Backend.Close()
		}
		return nil, err
	}
	d, st, live, err := openStore(ctx, o, log, observer{learn, outs})
	if err != nil {
		if o.Backend != nil {
			o.Backend.Close()
		}
		return nil, err
	}
	closeStore := func() {
		if live != nil {
			live.Close()
			o.Backend.Close()
		}
	}
	// Scorers read their inputs from a feature snapshot of the same data.
	feats := features.NewSeq(st.Items(), st.Interactions(), features.Options{})
	log.Info("data set loaded", "dir", o.Data, "users", st.Users(), "items", len(st.ItemIDs()), "events", st.Events(), "dur", time.Since(start))

	var batches *models.BatchMetrics // nil without a registry: nobody would read them
	if o.Registerer != nil {
		var err error
		if batches, err = models.NewBatchMetrics(o.Registerer); err != nil {
			closeStore()
			return nil, err
		}
	}
	registry, closeONNX := onnxRegistry(o.ONNXRuntimeLib, log)
	repo, err := repository.Open(ctx, repository.Options{
		Dir: o.Repo, Registry: registry, Env: models.Env{Logger: log, Features: feats, Batches: batches}, Logger: log,
		MaxUploadBytes: o.MaxUploadBytes, Probe: probe(ctx, st),
	})
	if err != nil {
		closeONNX()
		closeStore()
		return nil, fmt.Errorf("open model repository: %w", err)
	}
	learn.bind(repo)
	s := &Stack{Dataset: d, Store: st, Live: live, Repository: repo, RoutesFile: filepath.Join(o.Repo, router.ConfigFile),
		log: log, closeONNX: closeONNX, closeStore: closeStore}
	rcfg, err := router.LoadConfig(s.RoutesFile)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("load routes: %w", err)
	}
	impressions := o.Impressions
	if live != nil {
		impressions = impressionSink{live: live, next: o.Impressions}
	}
	if s.Router, err = router.New(router.Options{Models: repoModels{repo}, Store: st, Config: rcfg, Logger: log, Registerer: o.Registerer, Impressions: impressions}); err != nil {
		s.Close()
		return nil, err
	}
	warnUnknownModels(&rcfg, repo.Names(), log)
	for _, in := range repo.List() {
		log.Info("model", "name", in.Name, "kind", in.Kind, "version", in.ActiveVersion, "state", in.State.String(), "err", in.Err)
	}
	return s, nil
}

// Close closes the repository (draining the versions in use) and then
// releases onnxruntime: models first, the library they run on last.
func (s *Stack) Close() {
	s.Repository.Close()
	s.closeONNX()
	s.closeStore()
}

// openStore builds the store: a snapshot of the data set, or, with a
// backend, the live store read from it (the data set is read only to seed a
// backend on its first start). The live store tells obs what it applies.
func openStore(ctx context.Context, o Options, log *slog.Logger, obs store.Observer) (*dataset.Dataset, *store.Memory, *store.Live, error) {
	readData := func() (*dataset.Dataset, error) {
		if o.Dataset != nil {
			return o.Dataset, nil
		}
		if o.Data == "" {
			return nil, errors.New("serving: a data set is required")
		}
		d, err := dataset.Read(o.Data)
		if err != nil {
			return nil, fmt.Errorf("load data set: %w", err)
		}
		return d, nil
	}
	if o.Backend == nil {
		d, err := readData()
		if err != nil {
			return nil, nil, nil, err
		}
		return d, store.New(d), nil, nil
	}
	seeded, err := o.Backend.Seeded(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("state store: %w", err)
	}
	var seed *dataset.Dataset
	if !seeded {
		if seed, err = readData(); err != nil {
			return nil, nil, nil, err
		}
	}
	live, err := store.OpenLive(ctx, o.Backend, store.LiveOptions{Types: o.EventTypes, Seed: seed, Logger: log, Observer: obs, Windows: o.Windows, NoImpressions: o.NoImpressions})
	if err != nil {
		return nil, nil, nil, err
	}
	return nil, live.Memory, live, nil
}

// onnxRegistry loads onnxruntime from lib (empty: onnx.FindLibrary) and returns
// the built-in model kinds with it, and the function releasing it. A library
// that is missing or fails to load is a warning, not an error: the onnx
// models then fail to load with the reason, and the Go-native models serve.
func onnxRegistry(lib string, log *slog.Logger) (*models.Registry, func()) {
	path, err := lib, error(nil)
	if path == "" {
		path, err = onnx.FindLibrary()
	}
	var rt *onnx.Runtime
	if err == nil {
		rt, err = onnx.NewRuntime(path)
	}
	if err != nil {
		log.Warn("onnxruntime not loaded: onnx models will not load (run `make ort` or set "+onnx.LibraryEnv+")", "err", err)
		return builtin.Registry(builtin.WithONNX(nil, err)), func() {}
	}
	log.Info("onnxruntime loaded", "onnxruntime", rt.Version(), "lib", rt.Path())
	return builtin.Registry(builtin.WithONNX(rt, nil)), func() {
		if err := rt.Close(); err != nil {
			log.Warn("onnxruntime close", "err", err)
		}
	}
}
