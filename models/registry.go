package models

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// Version is one model version directory as handed to a Builder.
type Version struct {
	// Name is the model's name (its directory under the repository).
	Name string
	// ID is the version directory's name.
	ID string
	// Dir is the version directory.
	Dir string
	// Spec is the decoded model.yaml.
	Spec Spec
}

// Env carries what builders may need beyond their own files. Fields may be
// nil; a builder that needs one reports a clear error.
type Env struct {
	Logger *slog.Logger
	// Features is the feature pipeline serving computes scorer inputs with.
	// When set, a model that scores feature rows (a RowModel with one output)
	// has its feature names bound to the pipeline at load, so a name the
	// pipeline does not produce is a load error, and it gains the Scorer
	// role. Offline tools that feed ready-made rows leave it nil.
	Features Features
	// Batches, when set, receives the queue wait, run time and batch size of
	// models that batch requests (the onnx kind with max_batch_size > 1),
	// labelled by model and version, so the server exports them; nil (as
	// offline tools pass) observes nothing.
	Batches *BatchMetrics
}

// Builder turns a version directory into a live model. It must validate
// everything it reads and return an error instead of panicking.
type Builder func(ctx context.Context, env Env, v Version) (Model, error)

// Registry maps a model kind (model.yaml "kind") to its Builder. Register every
// kind at start-up; it is safe for concurrent use.
type Registry struct {
	mu       sync.RWMutex
	builders map[string]Builder
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{builders: map[string]Builder{}} }

// Register adds a kind; registering a kind twice is an error.
func (k *Registry) Register(kind string, b Builder) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if kind == "" || b == nil {
		return fmt.Errorf("register kind %q: empty kind or nil builder", kind)
	}
	if _, dup := k.builders[kind]; dup {
		return fmt.Errorf("register kind %q: already registered", kind)
	}
	k.builders[kind] = b
	return nil
}

// Build loads v with the builder of its kind.
func (k *Registry) Build(ctx context.Context, env Env, v Version) (Model, error) {
	k.mu.RLock()
	b, ok := k.builders[v.Spec.Kind]
	k.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown model kind %q (known: %v): %w", v.Spec.Kind, k.Names(), ErrUnsupported)
	}
	m, err := b(ctx, env, v)
	if err != nil {
		return nil, fmt.Errorf("load %s/%s (%s): %w", v.Name, v.ID, v.Spec.Kind, err)
	}
	if env.Features != nil {
		if m, err = withFeatures(env.Features, m); err != nil {
			return nil, fmt.Errorf("load %s/%s (%s): %w", v.Name, v.ID, v.Spec.Kind, err)
		}
	}
	return m, nil
}

// Names lists the registered kinds, sorted.
func (k *Registry) Names() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	names := make([]string, 0, len(k.builders))
	for n := range k.builders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
