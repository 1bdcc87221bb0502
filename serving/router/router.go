// Package router turns a recommendation or scoring request into model calls:
// it validates the request, picks the route (or the single model a request
// names), runs the route's sources concurrently, blends their candidates,
// applies business filters, answers cold-start users from the fallback, and
// backfills short answers. It knows nothing of gRPC: the server and the
// offline evaluator call it alike, so offline numbers are the numbers the
// server would produce.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/store"
)

// Store gives the router user profiles, catalogue entries and the audience
// indexes TargetAudience draws candidate users from.
type Store interface {
	Profile(ctx context.Context, userID string) (store.Profile, error)
	Item(id string) (dataset.Item, bool)
	Availability(id string) (hidden, outOfStock bool)
	ItemUsers(itemID string) []string
	CategoryUsers(category string) []store.Affinity
	CategoryItems(category string) []string
}

// Request is a recommendation request.
type Request struct {
	UserID       string
	K            int
	SessionItems []string
	Context      map[string]string
	Route        string
	Model        string
	Filters      Filters
	// Debug asks for Response.Debug: what the models read.
	Debug bool
	// SessionID names the shopper's visit in the impression.
	SessionID string
}

// Filters are business constraints on the answer.
type Filters struct {
	ExcludeItems      []string
	ExcludeCategories []string
	IncludeCategories []string
	// IncludeSeen allows items already in the user's history (the route's
	// filters.exclude still applies).
	IncludeSeen bool
	// PriceMin and PriceMax, when set, bound item prices; an item without a
	// price is then left out.
	PriceMin, PriceMax *float64
}

// Item is one recommended item with the models that proposed it.
type Item struct {
	ItemID  string
	Score   float64
	Sources []string
}

// ModelVersion names a model version that contributed to an answer.
type ModelVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Canary is set when the version served as the model's canary.
	Canary bool `json:"canary,omitempty"`
}

// Response is the answer to a Request.
type Response struct {
	Items     []Item
	Route     string
	Arm       string
	Models    []ModelVersion
	ColdStart bool
	// RecommendationID names this answer: events that follow from it carry
	// it, so they are attributed to its route, arm and models.
	RecommendationID string
	// Debug is set when the request asked for it.
	Debug *Debug
}

// Debug shows what the models of an answer read, to see a tracked event
// reach them.
type Debug struct {
	// History is the history every model was given (stored events, then
	// the request's session items), oldest first, as item ids.
	History []string
	// Inputs holds, per model version that answered and explains its input
	// (models.InputExplainer), the items of that input.
	Inputs []ModelInput
}

// ModelInput is the input of one model version, as item ids.
type ModelInput struct {
	Model, Version string
	Items          []string
}

// ScoreRequest asks for scores of given items.
type ScoreRequest struct {
	UserID       string
	ItemIDs      []string
	Model        string
	Context      map[string]string
	SessionItems []string
}

// ScoreResponse carries one score per requested item, in request order.
type ScoreResponse struct {
	Scores []float64
	Model  ModelVersion
}

// SimilarRequest asks for items similar to an item.
type SimilarRequest struct {
	ItemID string
	K      int
	Model  string
	// UserID, optional, excludes the user's seen items unless
	// Filters.IncludeSeen.
	UserID  string
	Filters Filters
}

// SimilarResponse lists similar items, most similar first.
type SimilarResponse struct {
	Items []Item
	Model ModelVersion
	// RecommendationID names this answer (see Response.RecommendationID).
	RecommendationID string
}

// Options configures a Router.
type Options struct {
	Models Models
	Store  Store
	Config Config
	Logger *slog.Logger
	// Registerer receives the router's metrics (requests, errors, cold
	// starts, fallbacks, dropped sources and latency per route and arm; calls,
	// errors and latency per model version), so the process that owns the
	// registry decides where they are exposed. nil still counts them but
	// exposes them nowhere, as offline evaluation wants.
	Registerer prometheus.Registerer
	// Impressions, when set, receives every answer's impression.
	Impressions ImpressionLog
}

// Router answers requests. It is safe for concurrent use; SetConfig swaps the
// routing configuration atomically.
type Router struct {
	models  Models
	store   Store
	log     *slog.Logger
	tab     atomic.Pointer[table] // the compiled routes.yaml
	metrics metrics
	// impressions is nil when answers are not logged.
	impressions ImpressionLog
}

// New returns a Router; opts.Config must have been validated (LoadConfig or
// DefaultConfig do so).
func New(opts Options) (*Router, error) {
	if opts.Models == nil || opts.Store == nil {
		return nil, errors.New("router: Models and Store are required")
	}
	t, err := compile(opts.Config)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Router{models: opts.Models, store: opts.Store, log: log, impressions: opts.Impressions}
	if err := r.metrics.register(opts.Registerer); err != nil {
		return nil, err
	}
	r.tab.Store(t)
	return r, nil
}

// SetConfig validates cfg, compiles it and makes it the routing
// configuration for new requests; in-flight requests finish on the old one.
// A cfg that fails validation changes nothing.
func (r *Router) SetConfig(cfg Config) error {
	t, err := compile(cfg)
	if err != nil {
		return err
	}
	r.tab.Store(t)
	return nil
}

// Config returns a copy of the current routing configuration, with the
// defaults validation filled in.
func (r *Router) Config() Config { return r.tab.Load().cfg.clone() }

// Score answers a scoring request.
func (r *Router) Score(ctx context.Context, req ScoreRequest) (ScoreResponse, error) {
	t := r.tab.Load()
	if req.UserID == "" && len(req.SessionItems) == 0 {
		return ScoreResponse{}, fieldErr("user_id", "user_id or session_items is required")
	}
	if len(req.ItemIDs) == 0 {
		return ScoreResponse{}, fieldErr("item_ids", "at least one item is required")
	}
	if len(req.ItemIDs) > MaxScoreItems {
		return ScoreResponse{}, fieldErr("item_ids", "%d items exceed the limit of %d", len(req.ItemIDs), MaxScoreItems)
	}
	for i, id := range req.ItemIDs {
		if id == "" {
			return ScoreResponse{}, fieldErr(fmt.Sprintf("item_ids[%d]", i), "empty item id")
		}
		if _, ok := r.store.Item(id); !ok {
			return ScoreResponse{}, &models.FieldError{Field: fmt.Sprintf("item_ids[%d]", i),
				Err: fmt.Errorf("item %q is not in the catalogue: %w", id, models.ErrNotFound)}
		}
	}
	if err := validateSession(req.SessionItems); err != nil {
		return ScoreResponse{}, err
	}
	if err := validateContext(req.Context); err != nil {
		return ScoreResponse{}, err
	}
	sc, l, name, err := resolveRole[models.Scorer](r, req.Model, unit(req.UserID, req.SessionItems), "default_scorer", t.cfg.DefaultScorer, "score")
	if err != nil {
		return ScoreResponse{}, err
	}
	defer l.Release()
	version, canary := l.Version(), l.Canary()
	prof, err := r.profile(ctx, req.UserID, req.SessionItems)
	if err != nil {
		return ScoreResponse{}, err
	}
	q := models.Query{UserID: req.UserID, History: prof.History, Session: req.SessionItems, K: len(req.ItemIDs), Context: req.Context}
	start := time.Now()
	scores, err := sc.Score(ctx, q, req.ItemIDs)
	r.metrics.observeModel(name, version, time.Since(start), err)
	if err != nil {
		return ScoreResponse{}, fmt.Errorf("score with %q: %w", name, err)
	}
	if len(scores) != len(req.ItemIDs) {
		return ScoreResponse{}, fmt.Errorf("model %q returned %d scores for %d items", name, len(scores), len(req.ItemIDs))
	}
	return ScoreResponse{Scores: scores, Model: ModelVersion{Name: name, Version: version, Canary: canary}}, nil
}

// SimilarItems answers an item-to-item request from an item-similarity model.
func (r *Router) SimilarItems(ctx context.Context, req SimilarRequest) (SimilarResponse, error) {
	t := r.tab.Load()
	if req.ItemID == "" {
		return SimilarResponse{}, fieldErr("item_id", "required")
	}
	k, err := validateK(req.K)
	if err != nil {
		return SimilarResponse{}, err
	}
	sim, l, name, err := resolveRole[models.ItemSimilarity](r, req.Model, unit(req.UserID, nil), "default_similar", t.cfg.DefaultSimilar, "find similar items")
	if err != nil {
		return SimilarResponse{}, err
	}
	defer l.Release()
	prof, err := r.profile(ctx, req.UserID, nil)
	if err != nil {
		return SimilarResponse{}, err
	}
	allow := r.allow(prof, req.Filters, &noRouteFilters)
	items, err := sim.SimilarItems(ctx, models.SimilarQuery{ItemID: req.ItemID, K: k, Allow: func(id string) bool {
		return id != req.ItemID && allow(id)
	}})
	if errors.Is(err, models.ErrNotFound) {
		return SimilarResponse{}, &models.FieldError{Field: "item_id", Err: err}
	}
	if err != nil {
		return SimilarResponse{}, fmt.Errorf("similar items from %q: %w", name, err)
	}
	out := SimilarResponse{Items: make([]Item, 0, min(k, len(items))), Model: ModelVersion{Name: name, Version: l.Version(), Canary: l.Canary()}, RecommendationID: newRecommendationID()}
	src := []string{name}
	for _, s := range items[:min(k, len(items))] {
		out.Items = append(out.Items, Item{ItemID: s.ItemID, Score: s.Score, Sources: src})
	}
	r.impression(Impression{ID: out.RecommendationID, Kind: "similar", Item: req.ItemID, UserID: req.UserID,
		Models: []ModelVersion{out.Model}}, out.Items)
	return out, nil
}

// resolveRole acquires the model a request names, or the configured default,
// for the traffic unit u and checks it has role T; it returns the role, the
// lease the caller releases, and the model's name. A bad request names the
// "model" field; a missing or unfit default is the server's configuration
// problem (FailedPrecondition), not the caller's.
func resolveRole[T any](r *Router, name, u, defaultKey, defaultName, role string) (T, Lease, string, error) {
	var zero T
	if name == "" {
		l, err := r.models.Acquire(defaultName, u)
		if err != nil {
			return zero, nil, "", fmt.Errorf("%s %q of routes.yaml: %v: %w", defaultKey, defaultName, err, models.ErrNotReady)
		}
		m, ok := l.Model().(T)
		if !ok {
			kind := l.Kind()
			l.Release()
			return zero, nil, "", fmt.Errorf("%s %q (kind %s) cannot %s: %w", defaultKey, defaultName, kind, role, models.ErrUnsupported)
		}
		return m, l, defaultName, nil
	}
	l, err := r.models.Acquire(name, u)
	if err != nil {
		return zero, nil, "", &models.FieldError{Field: "model", Err: err}
	}
	m, ok := l.Model().(T)
	if !ok {
		kind := l.Kind()
		l.Release()
		return zero, nil, "", fieldErr("model", "model %q (kind %s) cannot %s", name, kind, role)
	}
	return m, l, name, nil
}
