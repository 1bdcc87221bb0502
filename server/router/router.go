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
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/models/topk"
	"github.com/recserve/recserve/store"
)

// Limits on request sizes.
const (
	DefaultK        = 10
	MaxK            = 1000
	MaxScoreItems   = 10000
	MaxSessionItems = 1000
)

// Models gives the router the active version of a model by name.
type Models interface {
	Get(name string) (*repository.Loaded, error)
}

// Store gives the router user profiles, catalogue entries and the audience
// indexes TargetAudience draws candidate users from.
type Store interface {
	Profile(ctx context.Context, userID string) (store.Profile, error)
	Item(id string) (dataset.Item, bool)
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
}

// Filters are business constraints on the answer.
type Filters struct {
	ExcludeItems      []string
	ExcludeCategories []string
	IncludeCategories []string
	// IncludeSeen allows items already in the user's history.
	IncludeSeen bool
}

// Item is one recommended item with the models that proposed it.
type Item struct {
	ItemID  string
	Score   float64
	Sources []string
}

// ModelVersion names a model version that contributed to an answer.
type ModelVersion struct {
	Name, Version string
}

// Response is the answer to a Request.
type Response struct {
	Items     []Item
	Route     string
	Arm       string
	Models    []ModelVersion
	ColdStart bool
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
}

// Options configures a Router.
type Options struct {
	Models Models
	Store  Store
	Config Config
	Logger *slog.Logger
}

// Router answers requests. It is safe for concurrent use; SetConfig swaps the
// routing configuration atomically.
type Router struct {
	models Models
	store  Store
	log    *slog.Logger
	cfg    atomic.Pointer[Config]
}

// New returns a Router; opts.Config must have been validated (LoadConfig or
// DefaultConfig do so).
func New(opts Options) (*Router, error) {
	if opts.Models == nil || opts.Store == nil {
		return nil, errors.New("router: Models and Store are required")
	}
	cfg := opts.Config.clone()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Router{models: opts.Models, store: opts.Store, log: log}
	r.cfg.Store(&cfg)
	return r, nil
}

// SetConfig validates cfg and makes it the routing configuration for new
// requests; in-flight requests finish on the old one.
func (r *Router) SetConfig(cfg Config) error {
	cfg = cfg.clone()
	if err := cfg.Validate(); err != nil {
		return err
	}
	r.cfg.Store(&cfg)
	return nil
}

// Config returns a copy of the current routing configuration.
func (r *Router) Config() Config { return r.cfg.Load().clone() }

// plan is a resolved request: the sources to run and the fallback.
type plan struct {
	route    string
	sources  []Source
	fallback string
}

// Recommend answers a recommendation request.
func (r *Router) Recommend(ctx context.Context, req Request) (Response, error) {
	cfg := r.cfg.Load()
	k, err := validateK(req.K)
	if err != nil {
		return Response{}, err
	}
	if req.UserID == "" && len(req.SessionItems) == 0 {
		return Response{}, fieldErr("user_id", "user_id or session_items is required")
	}
	if err := validateSession(req.SessionItems); err != nil {
		return Response{}, err
	}
	if err := validateContext(req.Context); err != nil {
		return Response{}, err
	}
	p, err := r.resolve(cfg, req)
	if err != nil {
		return Response{}, err
	}
	prof, err := r.profile(ctx, req.UserID, req.SessionItems)
	if err != nil {
		return Response{}, err
	}
	history := prof.History
	q := models.Query{UserID: req.UserID, History: history, Session: req.SessionItems, K: k, Context: req.Context,
		Allow: r.allow(prof, req.Filters)}

	resp := Response{Route: p.route, ColdStart: len(history) == 0}
	sources := p.sources
	if resp.ColdStart && req.Model == "" {
		sources = []Source{{Model: p.fallback, Weight: 1}}
	}
	results := r.runSources(ctx, sources, q)
	for _, res := range results {
		if res.err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return Response{}, ctxErr
			}
			if req.Model != "" {
				return Response{}, res.err
			}
			r.log.Warn("source failed", "route", p.route, "model", res.source.Model, "err", res.err)
			continue
		}
		resp.Models = append(resp.Models, ModelVersion{res.source.Model, res.version})
	}
	blended := blend(results, k)
	if len(blended) < k && req.Model == "" {
		blended, err = r.backfill(ctx, &resp, blended, p.fallback, q)
		if err != nil {
			return Response{}, err
		}
	}
	resp.Items = blended
	return resp, nil
}

// resolve picks the sources for req.
func (r *Router) resolve(cfg *Config, req Request) (plan, error) {
	if req.Model != "" {
		l, err := r.models.Get(req.Model)
		if err != nil {
			return plan{}, &FieldError{Field: "model", Err: err}
		}
		if _, ok := l.Model.(models.Recommender); !ok {
			return plan{}, fieldErr("model", "model %q (kind %s) cannot recommend", req.Model, l.Spec.Kind)
		}
		return plan{route: "model:" + req.Model, sources: []Source{{Model: req.Model, Weight: 1}}, fallback: cfg.Fallback}, nil
	}
	name := req.Route
	if name == "" {
		name = cfg.DefaultRoute
	}
	rt, ok := cfg.route(name)
	if !ok {
		return plan{}, &FieldError{Field: "route", Err: fmt.Errorf("route %q: %w", name, models.ErrNotFound)}
	}
	fb := rt.Fallback
	if fb == "" {
		fb = cfg.Fallback
	}
	return plan{route: rt.Name, sources: rt.Sources, fallback: fb}, nil
}

// profile is the user's stored profile with the session items appended to
// the history (as views) and to the seen set. The stored profile is shared and
// never modified.
func (r *Router) profile(ctx context.Context, userID string, session []string) (store.Profile, error) {
	var p store.Profile
	if userID != "" {
		var err error
		if p, err = r.store.Profile(ctx, userID); err != nil {
			return store.Profile{}, fmt.Errorf("profile of %q: %w", userID, err)
		}
	}
	if len(session) == 0 {
		return p, nil
	}
	h := make([]dataset.Interaction, 0, len(p.History)+len(session))
	h = append(h, p.History...)
	var ts int64
	if len(p.History) > 0 {
		ts = p.History[len(p.History)-1].Timestamp
	}
	seen := make(map[string]struct{}, len(p.Seen)+len(session))
	for id := range p.Seen {
		seen[id] = struct{}{}
	}
	for _, id := range session {
		h = append(h, dataset.Interaction{UserID: userID, ItemID: id, Event: dataset.View, Value: 1, Timestamp: ts})
		seen[id] = struct{}{}
	}
	return store.Profile{History: h, Seen: seen}, nil
}

// allow builds the item filter of a request. It allocates only for the
// request's own exclusions; the seen set is the store's.
func (r *Router) allow(p store.Profile, f Filters) func(string) bool {
	seen := p.Seen
	if f.IncludeSeen {
		seen = nil
	}
	excluded := setOf(f.ExcludeItems)
	exCat := setOf(f.ExcludeCategories)
	inCat := setOf(f.IncludeCategories)
	needItem := len(exCat) > 0 || len(inCat) > 0
	return func(id string) bool {
		if _, ok := seen[id]; ok {
			return false
		}
		if _, ok := excluded[id]; ok {
			return false
		}
		if !needItem {
			return true
		}
		it, ok := r.store.Item(id)
		if !ok {
			return len(inCat) == 0
		}
		if _, ok := exCat[it.Category]; ok {
			return false
		}
		if len(inCat) > 0 {
			_, ok := inCat[it.Category]
			return ok
		}
		return true
	}
}

func setOf(xs []string) map[string]struct{} {
	if len(xs) == 0 {
		return nil
	}
	s := make(map[string]struct{}, len(xs))
	for _, x := range xs {
		s[x] = struct{}{}
	}
	return s
}

// sourceResult is the outcome of one source.
type sourceResult struct {
	source  Source
	version string
	items   []models.Scored
	err     error
}

// runSources runs every source concurrently (inline when there is one) and
// returns the results in source order.
func (r *Router) runSources(ctx context.Context, sources []Source, q models.Query) []sourceResult {
	out := make([]sourceResult, len(sources))
	if len(sources) == 1 {
		out[0] = r.runSource(ctx, sources[0], q)
		return out
	}
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = r.runSource(ctx, s, q)
		}()
	}
	wg.Wait()
	return out
}

func (r *Router) runSource(ctx context.Context, s Source, q models.Query) (res sourceResult) {
	res.source = s
	l, err := r.models.Get(s.Model)
	if err != nil {
		res.err = err
		return res
	}
	res.version = l.Version
	rec, ok := l.Model.(models.Recommender)
	if !ok {
		res.err = fmt.Errorf("model %q cannot recommend: %w", s.Model, models.ErrUnsupported)
		return res
	}
	if s.Candidates > 0 {
		q.K = s.Candidates
	} else if len(q.History) > 0 {
		q.K = 2 * q.K
	}
	res.items, res.err = rec.Recommend(ctx, q)
	return res
}

// blend merges the successful sources' candidates: a single source keeps its
// own scores; several are combined by the weighted sum of min-max normalised
// scores. The top k are returned.
func blend(results []sourceResult, k int) []Item {
	ok := 0
	for _, res := range results {
		if res.err == nil {
			ok++
		}
	}
	if ok == 1 {
		for _, res := range results {
			if res.err == nil {
				return single(res, k)
			}
		}
	}
	type acc struct {
		score   float64
		sources []string
	}
	byItem := map[string]*acc{}
	var order []string
	for _, res := range results {
		if res.err != nil || len(res.items) == 0 {
			continue
		}
		// One shared slice per source: cap 1 makes a second append copy.
		src := []string{res.source.Model}
		lo, hi := res.items[len(res.items)-1].Score, res.items[0].Score
		for _, it := range res.items {
			s := it.Score
			if ok > 1 {
				s = res.source.Weight * normalise(s, lo, hi)
			}
			a, seen := byItem[it.ItemID]
			if !seen {
				a = &acc{}
				byItem[it.ItemID] = a
				order = append(order, it.ItemID)
			}
			a.score += s
			if a.sources == nil {
				a.sources = src
			} else {
				a.sources = append(a.sources, res.source.Model)
			}
		}
	}
	c := topk.New(k)
	for _, id := range order {
		c.Push(id, byItem[id].score)
	}
	top := c.Sorted()
	out := make([]Item, len(top))
	for i, s := range top {
		out[i] = Item{ItemID: s.ItemID, Score: s.Score, Sources: byItem[s.ItemID].sources}
	}
	return out
}

// single converts one source's answer, keeping its scores and order.
func single(res sourceResult, k int) []Item {
	items := res.items[:min(k, len(res.items))]
	src := []string{res.source.Model}
	out := make([]Item, len(items))
	for i, s := range items {
		out[i] = Item{ItemID: s.ItemID, Score: s.Score, Sources: src}
	}
	return out
}

// normalise maps s from [lo,hi] to [0,1]; a constant source maps to 1.
func normalise(s, lo, hi float64) float64 {
	if hi-lo <= 0 || math.IsInf(hi-lo, 0) {
		return 1
	}
	return (s - lo) / (hi - lo)
}

// backfill tops up items from the fallback model, below every item already
// chosen.
func (r *Router) backfill(ctx context.Context, resp *Response, items []Item, fallback string, q models.Query) ([]Item, error) {
	chosen := make(map[string]struct{}, len(items))
	floor := math.Inf(1)
	for _, it := range items {
		chosen[it.ItemID] = struct{}{}
		floor = min(floor, it.Score)
	}
	allow := q.Allow
	q.Allow = func(id string) bool {
		if _, ok := chosen[id]; ok {
			return false
		}
		return allow == nil || allow(id)
	}
	need := q.K - len(items)
	q.K = need
	// Candidates pins the fallback to exactly the missing count: without it
	// runSource asks for 2*need when the user has history, overshooting k.
	res := r.runSource(ctx, Source{Model: fallback, Weight: 1, Candidates: need}, q)
	if res.err != nil {
		if len(items) > 0 && ctx.Err() == nil {
			r.log.Warn("fallback failed", "model", fallback, "err", res.err)
			return items, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("fallback %q: %w", fallback, res.err)
	}
	if len(res.items) > need {
		res.items = res.items[:need]
	}
	if len(res.items) == 0 {
		return items, nil
	}
	if !contains(resp.Models, fallback) {
		resp.Models = append(resp.Models, ModelVersion{fallback, res.version})
	}
	// Keep backfilled items below the blended ones whatever their scale.
	shift := 0.0
	if len(items) > 0 && res.items[0].Score >= floor {
		shift = res.items[0].Score - floor + 1
	}
	for _, s := range res.items {
		items = append(items, Item{ItemID: s.ItemID, Score: s.Score - shift, Sources: []string{fallback}})
	}
	return items, nil
}

func contains(ms []ModelVersion, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

// Score answers a scoring request.
func (r *Router) Score(ctx context.Context, req ScoreRequest) (ScoreResponse, error) {
	cfg := r.cfg.Load()
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
			return ScoreResponse{}, &FieldError{Field: fmt.Sprintf("item_ids[%d]", i),
				Err: fmt.Errorf("item %q is not in the catalogue: %w", id, models.ErrNotFound)}
		}
	}
	if err := validateSession(req.SessionItems); err != nil {
		return ScoreResponse{}, err
	}
	if err := validateContext(req.Context); err != nil {
		return ScoreResponse{}, err
	}
	sc, l, err := resolveRole[models.Scorer](r, req.Model, "default_scorer", cfg.DefaultScorer, "score")
	if err != nil {
		return ScoreResponse{}, err
	}
	name := l.Name
	prof, err := r.profile(ctx, req.UserID, req.SessionItems)
	if err != nil {
		return ScoreResponse{}, err
	}
	q := models.Query{UserID: req.UserID, History: prof.History, Session: req.SessionItems, K: len(req.ItemIDs), Context: req.Context}
	scores, err := sc.Score(ctx, q, req.ItemIDs)
	if err != nil {
		return ScoreResponse{}, fmt.Errorf("score with %q: %w", name, err)
	}
	if len(scores) != len(req.ItemIDs) {
		return ScoreResponse{}, fmt.Errorf("model %q returned %d scores for %d items", name, len(scores), len(req.ItemIDs))
	}
	return ScoreResponse{Scores: scores, Model: ModelVersion{name, l.Version}}, nil
}

// SimilarItems answers an item-to-item request from an item-similarity model.
func (r *Router) SimilarItems(ctx context.Context, req SimilarRequest) (SimilarResponse, error) {
	cfg := r.cfg.Load()
	if req.ItemID == "" {
		return SimilarResponse{}, fieldErr("item_id", "required")
	}
	k, err := validateK(req.K)
	if err != nil {
		return SimilarResponse{}, err
	}
	sim, l, err := resolveRole[models.ItemSimilarity](r, req.Model, "default_similar", cfg.DefaultSimilar, "find similar items")
	if err != nil {
		return SimilarResponse{}, err
	}
	name := l.Name
	prof, err := r.profile(ctx, req.UserID, nil)
	if err != nil {
		return SimilarResponse{}, err
	}
	allow := r.allow(prof, req.Filters)
	items, err := sim.SimilarItems(ctx, models.SimilarQuery{ItemID: req.ItemID, K: k, Allow: func(id string) bool {
		return id != req.ItemID && allow(id)
	}})
	if errors.Is(err, models.ErrNotFound) {
		return SimilarResponse{}, &FieldError{Field: "item_id", Err: err}
	}
	if err != nil {
		return SimilarResponse{}, fmt.Errorf("similar items from %q: %w", name, err)
	}
	out := SimilarResponse{Items: make([]Item, 0, min(k, len(items))), Model: ModelVersion{name, l.Version}}
	src := []string{name}
	for _, s := range items[:min(k, len(items))] {
		out.Items = append(out.Items, Item{ItemID: s.ItemID, Score: s.Score, Sources: src})
	}
	return out, nil
}

// resolveRole finds the model a request names, or the configured default,
// and checks it has role T. A bad request names the "model" field; a missing
// or unfit default is the server's configuration problem (FailedPrecondition),
// not the caller's.
func resolveRole[T any](r *Router, name, defaultKey, defaultName, role string) (T, *repository.Loaded, error) {
	var zero T
	if name == "" {
		l, err := r.models.Get(defaultName)
		if err != nil {
			return zero, nil, fmt.Errorf("%s %q of routes.yaml: %v: %w", defaultKey, defaultName, err, models.ErrNotReady)
		}
		m, ok := l.Model.(T)
		if !ok {
			return zero, nil, fmt.Errorf("%s %q (kind %s) cannot %s: %w", defaultKey, defaultName, l.Spec.Kind, role, models.ErrUnsupported)
		}
		return m, l, nil
	}
	l, err := r.models.Get(name)
	if err != nil {
		return zero, nil, &FieldError{Field: "model", Err: err}
	}
	m, ok := l.Model.(T)
	if !ok {
		return zero, nil, fieldErr("model", "model %q (kind %s) cannot %s", name, l.Spec.Kind, role)
	}
	return m, l, nil
}

func validateK(k int) (int, error) {
	switch {
	case k == 0:
		return DefaultK, nil
	case k < 1 || k > MaxK:
		return 0, fieldErr("k", "must be between 1 and %d (0 means %d), got %d", MaxK, DefaultK, k)
	}
	return k, nil
}

// Limits on request context.
const (
	MaxContextEntries = 64
	MaxContextValue   = 1024
)

// validateContext checks a request's context map. Values feed routing rules
// and features; a numeric value must be finite, since a NaN or infinity would
// silently turn into "missing" or poison a score.
func validateContext(ctx map[string]string) error {
	if len(ctx) > MaxContextEntries {
		return fieldErr("context", "%d entries exceed the limit of %d", len(ctx), MaxContextEntries)
	}
	for k, v := range ctx {
		field := fmt.Sprintf("context[%q]", k)
		switch {
		case k == "":
			return fieldErr("context", "empty key")
		case len(v) > MaxContextValue:
			return fieldErr(field, "value of %d bytes exceeds the limit of %d", len(v), MaxContextValue)
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return fieldErr(field, "%q is not a finite number", v)
		}
	}
	return nil
}

func validateSession(items []string) error {
	if len(items) > MaxSessionItems {
		return fieldErr("session_items", "%d items exceed the limit of %d", len(items), MaxSessionItems)
	}
	for i, id := range items {
		if id == "" {
			return fieldErr(fmt.Sprintf("session_items[%d]", i), "empty item id")
		}
	}
	return nil
}
