// Package repository holds the live model set of a server: it scans a model
// repository on disk (<dir>/<name>/<version>/model.yaml plus files), loads the
// newest loadable version of each model with the registered model kinds, and
// hands the active version to callers.
//
// A model that fails to load is recorded with its error and never stops the
// others from serving. Active versions are swapped through atomic pointers, so
// readers take no lock on the request path.
package repository

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recserve/recserve/models"
)

// State is the serving state of a model.
type State int

// Model states.
const (
	StateLoading State = iota + 1
	StateReady
	StateFailed
	StateUnloaded
	// StateAvailable is a version on disk that is not loaded.
	StateAvailable
)

// String returns the lower-case state name.
func (s State) String() string {
	switch s {
	case StateLoading:
		return "loading"
	case StateReady:
		return "ready"
	case StateFailed:
		return "failed"
	case StateUnloaded:
		return "unloaded"
	case StateAvailable:
		return "available"
	}
	return "unknown"
}

// Loaded is a loaded model version. It is immutable once published.
type Loaded struct {
	Name     string
	Version  string
	Spec     models.Spec
	Model    models.Model
	LoadedAt time.Time
}

// Info describes a model for listings.
type Info struct {
	Name          string
	Kind          string
	Signature     string
	ActiveVersion string
	Versions      []string
	State         State
	Err           string
	Roles         []string
	Metadata      map[string]string
	LoadedAt      time.Time
	// Policy is the version policy: "latest" (the newest loadable version
	// serves) or "specific" (the version labelled stable serves).
	Policy string
	// CanaryVersion, when set, takes CanaryPercent of traffic.
	CanaryVersion string
	CanaryPercent float64
	// Details describes every version on disk, oldest first.
	Details []VersionInfo
}

// VersionInfo describes one version of a model.
type VersionInfo struct {
	Version string
	// Label is "stable", "canary" or empty.
	Label string
	// State is StateReady for a serving version, StateFailed when its last
	// load failed (Err says why), StateAvailable otherwise.
	State     State
	Err       string
	Kind      string
	Signature string
	LoadedAt  time.Time
}

// Options configures a Repository.
type Options struct {
	// Dir is the repository directory.
	Dir string
	// Kinds builds models by kind; required.
	Kinds *models.Kinds
	// Env is passed to every builder.
	Env models.Env
	// Logger receives load events; nil discards them.
	Logger *slog.Logger
	// MaxUploadBytes bounds the total size of one uploaded version (default
	// DefaultMaxUploadBytes); MaxUploadFiles its file count (default
	// DefaultMaxUploadFiles).
	MaxUploadBytes int64
	MaxUploadFiles int
	// Probe is the synthetic request a new version answers before it may
	// serve; nil probes with a cold-start query and no items.
	Probe *Probe
}

// Upload limits used when Options leaves them zero.
const (
	DefaultMaxUploadBytes = 1 << 30
	DefaultMaxUploadFiles = 1000
)

// Probe is the warm-up request validation sends a new version through every
// role it has: Query to Recommend (and Score), Items to Score and
// SimilarItems. The server builds it from its data set (a real user's history
// and popular items), so a model is exercised on the inputs it will see.
type Probe struct {
	Query models.Query
	Items []string
}

// Repository is the set of models a server holds. It is safe for concurrent
// use.
type Repository struct {
	opts Options
	log  *slog.Logger

	mu      sync.RWMutex
	entries map[string]*entry
}

type entry struct {
	name     string
	versions []string
	kind     string // from the newest readable model.yaml, for failed models
	state    State
	err      error
	active   atomic.Pointer[Loaded]
}

// Open scans opts.Dir and loads every model. Per-model load failures are
// recorded (see List) and are not errors of Open; only an unreadable repository
// directory is.
func Open(ctx context.Context, opts Options) (*Repository, error) {
	if opts.Kinds == nil {
		return nil, errors.New("repository: Options.Kinds is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Repository{opts: opts, log: log, entries: map[string]*entry{}}
	if err := r.Load(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Dir returns the repository directory.
func (r *Repository) Dir() string { return r.opts.Dir }

// Load (re)scans the repository and loads every model whose newest loadable
// version is not the one already active.
func (r *Repository) Load(ctx context.Context) error {
	names, err := scanModels(r.opts.Dir)
	if err != nil {
		return fmt.Errorf("repository %s: %w", r.opts.Dir, err)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.loadModel(ctx, name)
	}
	return nil
}

func (r *Repository) entry(name string) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	if !ok {
		e = &entry{name: name, state: StateLoading}
		r.entries[name] = e
	}
	return e
}

// loadModel loads the newest version of name that loads, falling back to older
// ones; the first failure is kept as the model's error.
func (r *Repository) loadModel(ctx context.Context, name string) {
	e := r.entry(name)
	dir := filepath.Join(r.opts.Dir, name)
	versions, err := scanVersions(dir)
	var firstErr error
	if err != nil {
		firstErr = err
	} else if len(versions) == 0 {
		firstErr = fmt.Errorf("model %s: no version directories", name)
	}
	var loaded *Loaded
	kind := ""
	for i := len(versions) - 1; i >= 0 && loaded == nil; i-- {
		v := versions[i]
		if cur := e.active.Load(); cur != nil && cur.Version == v {
			loaded = cur
			break
		}
		l, err := r.loadVersion(ctx, name, v)
		if l != nil && kind == "" {
			kind = l.Spec.Kind
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			r.log.Warn("model version failed to load", "model", name, "version", v, "err", err)
			continue
		}
		loaded = l
	}
	r.mu.Lock()
	e.versions = versions
	e.err = firstErr
	if loaded != nil {
		e.kind = loaded.Spec.Kind
		e.state = StateReady
	} else {
		if kind != "" {
			e.kind = kind
		}
		e.state = StateFailed
	}
	r.mu.Unlock()
	if loaded == nil {
		return
	}
	if old := e.active.Swap(loaded); old != nil && old != loaded {
		// TODO(lifecycle): close after in-flight requests drain.
		_ = old.Model.Close()
	}
	r.log.Info("model ready", "model", name, "version", loaded.Version, "kind", loaded.Spec.Kind)
}

// loadVersion builds one version. On a build error it still returns a Loaded
// without a Model when model.yaml could be read, so the kind can be reported.
func (r *Repository) loadVersion(ctx context.Context, name, version string) (*Loaded, error) {
	dir := filepath.Join(r.opts.Dir, name, version)
	spec, err := models.ReadSpec(dir)
	if err != nil {
		return nil, fmt.Errorf("model %s version %s: %w", name, version, err)
	}
	m, err := r.opts.Kinds.Build(ctx, r.opts.Env, models.Version{Name: name, ID: version, Dir: dir, Spec: spec})
	if err != nil {
		return &Loaded{Name: name, Version: version, Spec: spec}, err
	}
	return &Loaded{Name: name, Version: version, Spec: spec, Model: m, LoadedAt: time.Now()}, nil
}

// Get returns the active version of the named model.
func (r *Repository) Get(name string) (*Loaded, error) {
	r.mu.RLock()
	e, ok := r.entries[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("model %q: %w", name, models.ErrNotFound)
	}
	if l := e.active.Load(); l != nil {
		return l, nil
	}
	r.mu.RLock()
	err := e.err
	r.mu.RUnlock()
	return nil, fmt.Errorf("model %q has no loaded version (%v): %w", name, err, models.ErrNotReady)
}

// Names lists the models of the repository, sorted.
func (r *Repository) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Info describes one model.
func (r *Repository) Info(name string) (Info, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[name]
	if !ok {
		return Info{}, fmt.Errorf("model %q: %w", name, models.ErrNotFound)
	}
	return e.infoLocked(), nil
}

// List describes every model, sorted by name.
func (r *Repository) List() []Info {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Info, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e.infoLocked())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (e *entry) infoLocked() Info {
	in := Info{Name: e.name, Kind: e.kind, Versions: slices.Clone(e.versions), State: e.state}
	if e.err != nil {
		in.Err = e.err.Error()
	}
	if l := e.active.Load(); l != nil {
		in.Kind = l.Spec.Kind
		in.Signature = l.Spec.Signature
		in.ActiveVersion = l.Version
		in.Roles = models.Roles(l.Model)
		in.LoadedAt = l.LoadedAt
		if len(l.Spec.Metadata) > 0 {
			in.Metadata = make(map[string]string, len(l.Spec.Metadata))
			for k, v := range l.Spec.Metadata {
				in.Metadata[k] = fmt.Sprint(v)
			}
		}
	}
	return in
}

// Close closes every loaded model.
func (r *Repository) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, e := range r.entries {
		if l := e.active.Swap(nil); l != nil {
			errs = append(errs, l.Model.Close())
		}
		e.state = StateUnloaded
	}
	return errors.Join(errs...)
}

// hidden reports directory names that are never models or versions: dot and
// underscore prefixes are reserved for temporary upload directories.
func hidden(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

func scanModels(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range ents {
		if de.IsDir() && !hidden(de.Name()) {
			names = append(names, de.Name())
		}
	}
	return names, nil
}

// scanVersions lists the version directories of a model, oldest first:
// numerically when every name is an integer, lexically otherwise.
func scanVersions(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var vs []string
	numeric := true
	for _, de := range ents {
		if !de.IsDir() || hidden(de.Name()) {
			continue
		}
		if _, err := strconv.ParseUint(de.Name(), 10, 64); err != nil {
			numeric = false
		}
		vs = append(vs, de.Name())
	}
	sort.Slice(vs, func(i, j int) bool {
		if numeric {
			a, _ := strconv.ParseUint(vs[i], 10, 64)
			b, _ := strconv.ParseUint(vs[j], 10, 64)
			return a < b
		}
		return vs[i] < vs[j]
	})
	return vs, nil
}
