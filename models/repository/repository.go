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
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recserve/recserve/internal/bucket"
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
	// Registry builds models by kind; required.
	Registry *models.Registry
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
// use: requests Acquire versions without blocking on a lock held across a
// load, and changes (Sync and the lifecycle operations) are serialised among
// themselves.
type Repository struct {
	opts Options
	log  *slog.Logger

	// admin serialises every change of what serves: Sync, Commit, Activate,
	// Rollback, Unload and Close. Loads run under it, never under mu.
	admin  sync.Mutex
	closed bool // guarded by admin

	mu       sync.RWMutex
	entries  map[string]*entry
	reserved map[string]bool // name/version of uploads in progress
}

// entry is one model. serving is read lock-free by Acquire; the rest is
// guarded by Repository.mu and changed only under Repository.admin.
type entry struct {
	name    string
	serving atomic.Pointer[serving]

	versions []string
	kind     string
	state    State
	err      error // the last error: a failed load, deploy or activation
	policy   Policy
	failed   map[string]failure // versions whose last load failed
}

// failure remembers a version that failed to load, so it is not retried
// until its directory changes.
type failure struct {
	fp  fingerprint
	err error
}

// serving is what a model serves: a stable version and, optionally, a canary
// that takes canaryPct of traffic. It is replaced whole, never modified.
type serving struct {
	stable    *Loaded
	canary    *Loaded
	canaryPct float64
	salt      string // of the canary's traffic split
}

// pick chooses the version serving unit.
func (s *serving) pick(unit string) *Loaded {
	if s.canary != nil {
		var p float64
		if unit == "" {
			// No identity to stick to: split at random.
			p = rand.Float64() * 100
		} else {
			p = bucket.Percent(s.salt, unit)
		}
		if p < s.canaryPct {
			return s.canary
		}
	}
	return s.stable
}

// has reports whether l serves in s.
func (s *serving) has(l *Loaded) bool {
	return s != nil && l != nil && (s.stable == l || s.canary == l)
}

// Open scans opts.Dir and loads every model. Per-model load failures are
// recorded (see List) and are not errors of Open; only an unreadable repository
// directory is.
func Open(ctx context.Context, opts Options) (*Repository, error) {
	if opts.Registry == nil {
		return nil, errors.New("repository: Options.Registry is required")
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if opts.MaxUploadFiles <= 0 {
		opts.MaxUploadFiles = DefaultMaxUploadFiles
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Repository{opts: opts, log: log, entries: map[string]*entry{}, reserved: map[string]bool{}}
	if err := r.Sync(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Dir returns the repository directory.
func (r *Repository) Dir() string { return r.opts.Dir }

// Sync rescans the repository directory and applies what changed on disk:
// new models and versions, edited policy files, versions changed in place,
// removed models. Open calls it; poll mode calls it periodically. A model
// that fails to load is recorded and never stops the others.
func (r *Repository) Sync(ctx context.Context) error {
	r.admin.Lock()
	defer r.admin.Unlock()
	if r.closed {
		return errClosed
	}
	names, err := scanModels(r.opts.Dir)
	if err != nil {
		return fmt.Errorf("repository %s: %w", r.opts.Dir, err)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.reconcile(ctx, name)
	}
	// Models whose directory is gone stop serving.
	r.mu.Lock()
	var gone []*entry
	for name, e := range r.entries {
		if !slices.Contains(names, name) {
			gone = append(gone, e)
			delete(r.entries, name)
		}
	}
	r.mu.Unlock()
	for _, e := range gone {
		r.publish(e, nil)
		r.log.Info("model removed from the repository", "model", e.name)
	}
	return nil
}

var errClosed = errors.New("repository is closed")

func (r *Repository) entry(name string) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	if !ok {
		e = &entry{name: name, state: StateLoading, failed: map[string]failure{}}
		r.entries[name] = e
	}
	return e
}

func (r *Repository) lookup(name string) (*entry, error) {
	r.mu.RLock()
	e, ok := r.entries[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("model %q: %w", name, models.ErrNotFound)
	}
	return e, nil
}

// reconcile makes name serve what its directory and policy say. It keeps a
// version that serves and is unchanged on disk, and keeps serving the old
// version when the new one fails. Called under admin.
func (r *Repository) reconcile(ctx context.Context, name string) {
	e := r.entry(name)
	modelDir := r.modelDir(name)
	cur := e.serving.Load()
	versions, err := scanVersions(modelDir)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	} else if len(versions) == 0 {
		errs = append(errs, fmt.Errorf("model %s: no version directories", name))
	}
	pol, perr := readPolicy(modelDir)
	if perr != nil {
		if cur != nil {
			// A bad hand edit keeps what serves.
			r.setMeta(e, versions, e.policy, perr, cur)
			r.log.Warn("model policy unreadable; keeping the serving versions", "model", name, "err", perr)
			return
		}
		errs = append(errs, perr)
		pol = Policy{}
	}
	if pol.Unloaded {
		r.publish(e, nil)
		if e.kind == "" && pol.Stable != "" {
			// Report the kind of an unloaded model without loading it.
			if spec, err := models.ReadSpec(filepath.Join(modelDir, pol.Stable)); err == nil {
				r.setKind(e, spec.Kind)
			}
		}
		r.setMeta(e, versions, pol, nil, nil)
		return
	}
	var candidates []string
	if pol.specific() {
		// The stable version, then earlier stable versions as fallbacks.
		candidates = append(candidates, pol.Stable)
		for _, v := range slices.Backward(pol.History) {
			if v != pol.Stable {
				candidates = append(candidates, v)
			}
		}
		candidates = slices.DeleteFunc(candidates, func(v string) bool { return !slices.Contains(versions, v) })
		if !slices.Contains(versions, pol.Stable) {
			errs = append(errs, fmt.Errorf("model %s: stable version %s of %s is not on disk", name, pol.Stable, PolicyFile))
		}
	} else {
		candidates = slices.Clone(versions)
		slices.Reverse(candidates)
	}
	var curStable, curCanary *Loaded
	if cur != nil {
		curStable, curCanary = cur.stable, cur.canary
	}
	stable, kind, serrs := r.choose(ctx, e, candidates, curStable, curStable)
	errs = append(errs, serrs...)
	next := (*serving)(nil)
	if stable != nil {
		next = &serving{stable: stable}
		if pol.Canary != "" && pol.Canary != stable.Version {
			if !slices.Contains(versions, pol.Canary) {
				errs = append(errs, fmt.Errorf("model %s: canary version %s of %s is not on disk", name, pol.Canary, PolicyFile))
			} else if c, _, cerrs := r.choose(ctx, e, []string{pol.Canary}, curCanary, stable); c != nil {
				next.canary, next.canaryPct, next.salt = c, pol.CanaryPercent, canarySalt(name, c.Version)
			} else {
				errs = append(errs, cerrs...)
			}
		}
	}
	if kind != "" {
		r.setKind(e, kind)
	}
	if !sameServing(cur, next) {
		r.publish(e, next)
		if next != nil {
			r.log.Info("model ready", "model", name, "version", next.stable.Version, "kind", next.stable.Spec.Kind, "canary", versionOf(next.canary))
		}
	}
	r.setMeta(e, versions, pol, errors.Join(errs...), next)
}

// choose returns the first of candidates that loads and validates. It reuses
// current when it is that version and unchanged on disk, keeps current when
// its own directory changed but no longer loads, and does not retry a
// version that failed until its directory changes. serving, if set, is the
// stable version a new one must keep the roles of. kind is the kind of the
// first model.yaml read, for reporting failed models.
func (r *Repository) choose(ctx context.Context, e *entry, candidates []string, current, serving *Loaded) (l *Loaded, kind string, errs []error) {
	for _, v := range candidates {
		dir := filepath.Join(r.modelDir(e.name), v)
		fp, err := fingerprintDir(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if current != nil && current.Version == v && current.fp == fp {
			return current, current.Spec.Kind, errs
		}
		r.mu.RLock()
		f, failed := e.failed[v]
		r.mu.RUnlock()
		if failed && f.fp == fp {
			errs = append(errs, f.err)
			continue
		}
		nl, k, err := r.load(ctx, e.name, v, dir, fp)
		if kind == "" {
			kind = k
		}
		if err == nil && serving != nil && serving.Version != v {
			if err = sameRoles(nl, serving); err != nil {
				nl.retire()
			}
		}
		if err != nil {
			r.log.Warn("model version failed to load", "model", e.name, "version", v, "err", err)
			r.mu.Lock()
			e.failed[v] = failure{fp: fp, err: err}
			r.mu.Unlock()
			errs = append(errs, err)
			if current != nil && current.Version == v {
				return current, current.Spec.Kind, errs
			}
			continue
		}
		r.mu.Lock()
		delete(e.failed, v)
		r.mu.Unlock()
		return nl, k, errs
	}
	return nil, kind, errs
}

// load builds and validates one version from dir (its place in the
// repository, or an upload's staging directory). The kind is returned
// whenever model.yaml could be read, so a failed model still reports it.
func (r *Repository) load(ctx context.Context, name, version, dir string, fp fingerprint) (*Loaded, string, error) {
	spec, err := models.ReadSpec(dir)
	if err != nil {
		return nil, "", fmt.Errorf("model %s version %s: %w", name, version, err)
	}
	m, err := r.opts.Registry.Build(ctx, r.opts.Env, models.Version{Name: name, ID: version, Dir: dir, Spec: spec})
	if err != nil {
		return nil, spec.Kind, err
	}
	l := newLoaded(name, version, spec, m, fp, r.log)
	if err := validate(ctx, m, r.opts.Probe); err != nil {
		l.retire()
		return nil, spec.Kind, fmt.Errorf("model %s version %s: %w", name, version, err)
	}
	return l, spec.Kind, nil
}

// publish makes next what e serves and retires the versions it replaced;
// they close once their in-flight requests release them.
func (r *Repository) publish(e *entry, next *serving) {
	old := e.serving.Swap(next)
	if old == nil {
		return
	}
	for _, l := range []*Loaded{old.stable, old.canary} {
		if l != nil && !next.has(l) {
			l.retire()
		}
	}
}

// setMeta records the outcome of a change for Info.
func (r *Repository) setMeta(e *entry, versions []string, pol Policy, err error, s *serving) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.versions, e.policy, e.err = versions, pol, err
	switch {
	case s != nil:
		e.state = StateReady
		e.kind = s.stable.Spec.Kind
	case pol.Unloaded:
		e.state = StateUnloaded
	default:
		e.state = StateFailed
	}
}

// setKind records the kind of a model that may not be loaded.
func (r *Repository) setKind(e *entry, kind string) {
	r.mu.Lock()
	e.kind = kind
	r.mu.Unlock()
}

func sameServing(a, b *serving) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.stable == b.stable && a.canary == b.canary && a.canaryPct == b.canaryPct
}

func versionOf(l *Loaded) string {
	if l == nil {
		return ""
	}
	return l.Version
}

func canarySalt(name, version string) string { return "canary\x00" + name + "\x00" + version }

// Acquire returns the version of name serving unit (a user id, or "" for an
// anonymous request): the canary for the units in its share, else the stable
// version. The caller must Release it when the request is done with the
// model; a version swapped out meanwhile is closed after its last Release.
func (r *Repository) Acquire(name, unit string) (*Loaded, error) {
	l, _, err := r.AcquireRole(name, unit)
	return l, err
}

// AcquireRole is Acquire that also says whether the version lent is the
// model's canary: impressions and experiment reports keep a canary's
// answers apart from its stable version's.
func (r *Repository) AcquireRole(name, unit string) (l *Loaded, canary bool, err error) {
	e, err := r.lookup(name)
	if err != nil {
		return nil, false, err
	}
	for {
		s := e.serving.Load()
		if s == nil {
			return nil, false, r.notReady(e)
		}
		if l := s.pick(unit); l.acquire() {
			return l, l == s.canary, nil
		}
		// l was retired and closed between the load and the acquire: the
		// swap that retired it has already published its successor.
	}
}

// EachServing calls fn with every version that serves, stable and canary,
// of every model: the serving core hands them what the live store learned
// (models.InteractionLearner, models.CatalogueLearner). Each version is
// held (acquired) for the call, so fn never runs on a closed model; a
// version being swapped out may still get a call, a retired one that has
// closed gets none. fn must not call back into the repository's lifecycle
// operations, and should be quick: it holds up the version's retirement.
func (r *Repository) EachServing(fn func(*Loaded)) {
	r.mu.RLock()
	entries := make([]*entry, 0, len(r.entries))
	for _, e := range r.entries {
		entries = append(entries, e)
	}
	r.mu.RUnlock()
	for _, e := range entries {
		s := e.serving.Load()
		if s == nil {
			continue
		}
		for _, l := range []*Loaded{s.stable, s.canary} {
			if l != nil && l.acquire() {
				fn(l)
				l.Release()
			}
		}
	}
}

// Get returns the stable version of name without holding it. It is for
// callers that never race a version change (offline evaluation, tests);
// servers use Acquire.
func (r *Repository) Get(name string) (*Loaded, error) {
	e, err := r.lookup(name)
	if err != nil {
		return nil, err
	}
	if s := e.serving.Load(); s != nil {
		return s.stable, nil
	}
	return nil, r.notReady(e)
}

func (r *Repository) notReady(e *entry) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e.state == StateUnloaded {
		return fmt.Errorf("model %q is unloaded: %w", e.name, models.ErrNotReady)
	}
	return fmt.Errorf("model %q has no loaded version (%v): %w", e.name, e.err, models.ErrNotReady)
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
	in := Info{Name: e.name, Kind: e.kind, Versions: slices.Clone(e.versions), State: e.state, Policy: PolicyLatest}
	if e.policy.specific() {
		in.Policy = PolicySpecific
	}
	if e.err != nil {
		in.Err = e.err.Error()
	}
	s := e.serving.Load()
	if s != nil {
		l := s.stable
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
		if s.canary != nil {
			in.CanaryVersion, in.CanaryPercent = s.canary.Version, s.canaryPct
		}
	}
	for _, v := range e.versions {
		d := VersionInfo{Version: v, State: StateAvailable}
		var l *Loaded
		switch {
		case s != nil && s.stable.Version == v:
			l, d.Label = s.stable, "stable"
		case s != nil && s.canary != nil && s.canary.Version == v:
			l, d.Label = s.canary, "canary"
		}
		if l != nil {
			d.State, d.Kind, d.Signature, d.LoadedAt = StateReady, l.Spec.Kind, l.Spec.Signature, l.LoadedAt
		} else if f, ok := e.failed[v]; ok {
			d.State, d.Err = StateFailed, f.err.Error()
		}
		in.Details = append(in.Details, d)
	}
	return in
}

// drainTimeout bounds how long Close waits for in-flight requests.
const drainTimeout = 10 * time.Second

// Close stops serving every model and closes each version once its
// in-flight requests have released it, waiting up to 10 seconds for them.
func (r *Repository) Close() error {
	r.admin.Lock()
	defer r.admin.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.mu.Lock()
	entries := slices.Collect(maps.Values(r.entries))
	for _, e := range entries {
		e.state = StateUnloaded
	}
	r.mu.Unlock()
	var retired []*Loaded
	for _, e := range entries {
		if s := e.serving.Load(); s != nil {
			retired = append(retired, s.stable)
			if s.canary != nil {
				retired = append(retired, s.canary)
			}
		}
		r.publish(e, nil)
	}
	timeout := time.NewTimer(drainTimeout)
	defer timeout.Stop()
	var errs []error
	for _, l := range retired {
		select {
		case <-l.closed:
			errs = append(errs, l.closeErr)
		case <-timeout.C:
			return fmt.Errorf("model %s version %s still in use after %v", l.Name, l.Version, drainTimeout)
		}
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
