package router

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"
)

// ConfigFile is the routing configuration's name inside a model repository.
const ConfigFile = "routes.yaml"

// DefaultFallback is the fallback model used when routes.yaml names none.
const DefaultFallback = "popularity"

// DefaultSimilarModel is the SimilarItems model used when routes.yaml names
// none.
const DefaultSimilarModel = "itemknn"

// DefaultRouteName is the route used when routes.yaml is absent.
const DefaultRouteName = "default"

// Config is the routing configuration (routes.yaml). The zero value is not
// valid; use DefaultConfig or LoadConfig.
//
// A request that names a model or a route gets exactly that. Otherwise the
// rules are tried in order and the first that matches picks a route or an
// experiment (whose arm, sticky per user, picks the route); without a match
// the default route answers.
type Config struct {
	// DefaultRoute answers requests no rule matches.
	DefaultRoute string `yaml:"default_route"`
	// DefaultScorer answers Score requests that name no model.
	DefaultScorer string `yaml:"default_scorer"`
	// Fallback is the last resort of every route: it answers cold-start users
	// and backfills short answers after the route's own fallbacks.
	Fallback string `yaml:"fallback"`
	// DefaultSimilar answers SimilarItems requests that name no model
	// (default itemknn).
	DefaultSimilar string `yaml:"default_similar,omitempty"`
	// NewUserEvents is the history length below which a known user counts
	// as "new" in rules (default 5).
	NewUserEvents int `yaml:"new_user_events,omitempty"`
	// Rules pick a route or experiment from the request; first match wins.
	Rules []Rule `yaml:"rules,omitempty"`
	// Experiments split traffic between routes.
	Experiments []Experiment `yaml:"experiments,omitempty"`
	// Routes are the named routes.
	Routes []Route `yaml:"routes"`
}

// User states a rule can match.
const (
	UserAnonymous = "anonymous" // no user_id: session items only
	UserNew       = "new"       // a user_id with fewer than NewUserEvents events
	UserKnown     = "known"     // a user_id with at least NewUserEvents events
)

// Rule matches requests on their context and the user's state.
type Rule struct {
	// Context must all match the request's context; the value "*" only
	// requires the key to be present.
	Context map[string]string `yaml:"context,omitempty"`
	// User is anonymous, new or known; empty matches any user.
	User string `yaml:"user,omitempty"`
	// Route or Experiment (exactly one) answers a matching request.
	Route      string `yaml:"route,omitempty"`
	Experiment string `yaml:"experiment,omitempty"`
}

// Experiment splits users between routes, A/B/n. A user's arm is a hash of
// the experiment's salt and the user id, so it is the same on every request
// and every replica; changing the salt reshuffles users.
type Experiment struct {
	Name string `yaml:"name"`
	// Salt defaults to Name.
	Salt string `yaml:"salt,omitempty"`
	Arms []Arm  `yaml:"arms"`
}

// Arm is one branch of an experiment.
type Arm struct {
	Name  string `yaml:"name"`
	Route string `yaml:"route"`
	// Percent of users; an experiment's arms sum to 100.
	Percent float64 `yaml:"percent"`
}

// Blend methods of a route.
const (
	BlendMinMax = "minmax" // weighted sum of min-max normalised scores (default)
	BlendRank   = "rank"   // weighted sum of 1 - rank/candidates
	BlendRRF    = "rrf"    // reciprocal rank fusion: Σ weight / (rrf_k + rank)
)

// Route is a named plan: candidate sources and how they are blended, an
// optional rerank stage, business filters, diversity and fallbacks.
type Route struct {
	Name    string   `yaml:"name"`
	Sources []Source `yaml:"sources"`
	// Blend is minmax (default), rank or rrf.
	Blend string `yaml:"blend,omitempty"`
	// RRFK is the k of reciprocal rank fusion (default 60).
	RRFK float64 `yaml:"rrf_k,omitempty"`
	// Rerank re-scores the blended top candidates with a scorer.
	Rerank *Rerank `yaml:"rerank,omitempty"`
	// Filters are the route's business rules, on top of the request's.
	Filters RouteFilters `yaml:"filters,omitempty"`
	// Diversity limits how alike the answer may be.
	Diversity *Diversity `yaml:"diversity,omitempty"`
	// Fallback lists models tried in order, before Config.Fallback, when
	// every source fails, for cold-start users, and to backfill; a single
	// name or a list.
	Fallback Chain `yaml:"fallback,omitempty"`
}

// Chain is an ordered list of model names; YAML accepts one name or a list.
type Chain []string

// UnmarshalYAML reads a scalar or a sequence of names.
func (c *Chain) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*c = Chain{n.Value}
		return nil
	}
	var names []string
	if err := n.Decode(&names); err != nil {
		return err
	}
	*c = names
	return nil
}

// Source is one candidate generator of a route.
type Source struct {
	Model string `yaml:"model"`
	// Weight scales the source's contribution to the blend; default 1.
	Weight float64 `yaml:"weight,omitempty"`
	// Candidates is how many items to take from the source; by default
	// the route's pool (k, or the rerank's top_n or 4k with diversity when
	// larger), doubled for a user with a history.
	Candidates int `yaml:"candidates,omitempty"`
	// TimeoutMS bounds the source inside the request's deadline; a source
	// that misses it is dropped from the blend. 0 means the request's own.
	TimeoutMS int `yaml:"timeout_ms,omitempty"`
}

// Rerank re-scores the top candidates of the blend with a scorer (for
// example the purchase-propensity model).
type Rerank struct {
	Model string `yaml:"model"`
	// TopN candidates are re-scored (default 50); the rest keep their order
	// below them.
	TopN int `yaml:"top_n,omitempty"`
	// Weight of the scorer against the blend, both min-max normalised over
	// the re-scored items: 1 (default) ranks by the scorer alone.
	Weight float64 `yaml:"weight,omitempty"`
}

// RouteFilters are business rules of a route.
type RouteFilters struct {
	// Exclude is what of the user's history is never recommended: seen
	// (default: everything the user touched), purchased, or none.
	Exclude string `yaml:"exclude,omitempty"`
	// IncludeOutOfStock keeps out-of-stock items (hidden items are never
	// returned).
	IncludeOutOfStock bool `yaml:"include_out_of_stock,omitempty"`
	// PriceMin and PriceMax bound item prices (items without a price pass
	// unless a bound is set).
	PriceMin *float64 `yaml:"price_min,omitempty"`
	PriceMax *float64 `yaml:"price_max,omitempty"`
	// ExcludeCategories and IncludeCategories as in the request filters.
	ExcludeCategories []string `yaml:"exclude_categories,omitempty"`
	IncludeCategories []string `yaml:"include_categories,omitempty"`
}

// History exclusion modes of RouteFilters.Exclude.
const (
	ExcludeSeen      = "seen"
	ExcludePurchased = "purchased"
	ExcludeNone      = "none"
)

// Diversity limits repetition in an answer.
type Diversity struct {
	// MaxPerCategory caps the items of one category (0 = no cap).
	MaxPerCategory int `yaml:"max_per_category,omitempty"`
	// MMRLambda, in (0,1), re-ranks by maximal marginal relevance:
	// λ·relevance − (1−λ)·max similarity to the items already chosen, where
	// items of the same category are similar (1, or 0.5 for the same brand
	// across categories). 0 disables MMR.
	MMRLambda float64 `yaml:"mmr_lambda,omitempty"`
}

// DefaultConfig is used when a repository has no routes.yaml: one route
// answered by the fallback model, which also scores.
func DefaultConfig() Config {
	return Config{
		DefaultRoute:   DefaultRouteName,
		DefaultScorer:  DefaultFallback,
		Fallback:       DefaultFallback,
		DefaultSimilar: DefaultSimilarModel,
		Routes:         []Route{{Name: DefaultRouteName, Sources: []Source{{Model: DefaultFallback, Weight: 1}}}},
	}
}

// LoadConfig reads path strictly (unknown keys are errors) and validates it.
// A missing file yields DefaultConfig.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return Config{}, err
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("%s: empty file", path)
		}
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks internal consistency and fills defaults. Whether the named
// models exist is checked per request, so a model may be deployed after its
// route.
func (c *Config) Validate() error {
	if c.Fallback == "" {
		c.Fallback = DefaultFallback
	}
	if c.NewUserEvents == 0 {
		c.NewUserEvents = 5
	}
	if c.NewUserEvents < 0 {
		return errors.New("new_user_events: must be positive")
	}
	if len(c.Routes) == 0 {
		return errors.New("routes: at least one route is required")
	}
	seen := map[string]bool{}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Name == "" {
			return fmt.Errorf("routes[%d].name: required", i)
		}
		if seen[r.Name] {
			return fmt.Errorf("routes[%d].name: duplicate route %q", i, r.Name)
		}
		seen[r.Name] = true
		if err := r.validate(); err != nil {
			return fmt.Errorf("routes[%d]%w", i, err)
		}
	}
	if c.DefaultRoute == "" {
		c.DefaultRoute = c.Routes[0].Name
	}
	if !seen[c.DefaultRoute] {
		return fmt.Errorf("default_route: no route named %q", c.DefaultRoute)
	}
	experiments := map[string]bool{}
	for i := range c.Experiments {
		e := &c.Experiments[i]
		if e.Name == "" {
			return fmt.Errorf("experiments[%d].name: required", i)
		}
		if experiments[e.Name] {
			return fmt.Errorf("experiments[%d].name: duplicate experiment %q", i, e.Name)
		}
		experiments[e.Name] = true
		if e.Salt == "" {
			e.Salt = e.Name
		}
		if len(e.Arms) == 0 {
			return fmt.Errorf("experiments[%d].arms: experiment %q needs at least one arm", i, e.Name)
		}
		var total float64
		arms := map[string]bool{}
		for j, a := range e.Arms {
			switch {
			case a.Name == "":
				return fmt.Errorf("experiments[%d].arms[%d].name: required", i, j)
			case arms[a.Name]:
				return fmt.Errorf("experiments[%d].arms[%d].name: duplicate arm %q", i, j, a.Name)
			case !seen[a.Route]:
				return fmt.Errorf("experiments[%d].arms[%d].route: no route named %q", i, j, a.Route)
			case !(a.Percent >= 0 && a.Percent <= 100):
				return fmt.Errorf("experiments[%d].arms[%d].percent: %v is not in [0, 100]", i, j, a.Percent)
			}
			arms[a.Name] = true
			total += a.Percent
		}
		if math.Abs(total-100) > 1e-9 {
			return fmt.Errorf("experiments[%d].arms: percents of %q sum to %v, want 100", i, e.Name, total)
		}
	}
	for i, r := range c.Rules {
		switch {
		case (r.Route == "") == (r.Experiment == ""):
			return fmt.Errorf("rules[%d]: exactly one of route and experiment is required", i)
		case r.Route != "" && !seen[r.Route]:
			return fmt.Errorf("rules[%d].route: no route named %q", i, r.Route)
		case r.Experiment != "" && !experiments[r.Experiment]:
			return fmt.Errorf("rules[%d].experiment: no experiment named %q", i, r.Experiment)
		}
		switch r.User {
		case "", UserAnonymous, UserNew, UserKnown:
		default:
			return fmt.Errorf("rules[%d].user: %q is not anonymous, new or known", i, r.User)
		}
	}
	if c.DefaultScorer == "" {
		c.DefaultScorer = c.Fallback
	}
	if c.DefaultSimilar == "" {
		c.DefaultSimilar = DefaultSimilarModel
	}
	return nil
}

// validate checks one route; errors start with the field path after
// "routes[i]".
func (r *Route) validate() error {
	if len(r.Sources) == 0 {
		return fmt.Errorf(".sources: route %q needs at least one source", r.Name)
	}
	for j := range r.Sources {
		s := &r.Sources[j]
		if s.Model == "" {
			return fmt.Errorf(".sources[%d].model: required", j)
		}
		if s.Weight == 0 {
			s.Weight = 1
		}
		if s.Weight < 0 || s.Candidates < 0 || s.TimeoutMS < 0 {
			return fmt.Errorf(".sources[%d]: weight, candidates and timeout_ms must be non-negative", j)
		}
		if math.IsNaN(s.Weight) || math.IsInf(s.Weight, 0) {
			return fmt.Errorf(".sources[%d]: weight %v must be finite", j, s.Weight)
		}
	}
	switch r.Blend {
	case "":
		r.Blend = BlendMinMax
	case BlendMinMax, BlendRank, BlendRRF:
	default:
		return fmt.Errorf(".blend: %q is not minmax, rank or rrf", r.Blend)
	}
	if r.RRFK == 0 {
		r.RRFK = 60
	}
	if !(r.RRFK > 0) || math.IsInf(r.RRFK, 0) {
		return fmt.Errorf(".rrf_k: %v must be positive", r.RRFK)
	}
	if rr := r.Rerank; rr != nil {
		if rr.Model == "" {
			return errors.New(".rerank.model: required")
		}
		if rr.TopN == 0 {
			rr.TopN = 50
		}
		if rr.Weight == 0 {
			rr.Weight = 1
		}
		if rr.TopN < 0 || !(rr.Weight > 0 && rr.Weight <= 1) {
			return errors.New(".rerank: top_n must be positive and weight in (0, 1]")
		}
	}
	f := &r.Filters
	switch f.Exclude {
	case "":
		f.Exclude = ExcludeSeen
	case ExcludeSeen, ExcludePurchased, ExcludeNone:
	default:
		return fmt.Errorf(".filters.exclude: %q is not seen, purchased or none", f.Exclude)
	}
	for _, b := range []*float64{f.PriceMin, f.PriceMax} {
		if b != nil && (math.IsNaN(*b) || math.IsInf(*b, 0)) {
			return errors.New(".filters: price bounds must be finite")
		}
	}
	if f.PriceMin != nil && f.PriceMax != nil && *f.PriceMin > *f.PriceMax {
		return fmt.Errorf(".filters: price_min %v above price_max %v", *f.PriceMin, *f.PriceMax)
	}
	if d := r.Diversity; d != nil {
		if d.MaxPerCategory < 0 || !(d.MMRLambda >= 0 && d.MMRLambda < 1) {
			return errors.New(".diversity: max_per_category must be non-negative and mmr_lambda in [0, 1)")
		}
	}
	for j, m := range r.Fallback {
		if m == "" {
			return fmt.Errorf(".fallback[%d]: empty model name", j)
		}
	}
	return nil
}

// clone returns a deep copy, so a Config handed to the router shares no
// slices with its caller.
// Models lists every model name the configuration refers to (defaults,
// fallbacks, route sources, fallback chains and rerank scorers), sorted and
// without repeats: a server warns about those its repository lacks, which
// would otherwise surface only as dropped sources at request time.
func (c *Config) Models() []string {
	set := map[string]struct{}{}
	add := func(names ...string) {
		for _, n := range names {
			if n != "" {
				set[n] = struct{}{}
			}
		}
	}
	add(c.DefaultScorer, c.DefaultSimilar, c.Fallback)
	for _, r := range c.Routes {
		for _, s := range r.Sources {
			add(s.Model)
		}
		add(r.Fallback...)
		if r.Rerank != nil {
			add(r.Rerank.Model)
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func (c Config) clone() Config {
	c.Routes = slices.Clone(c.Routes)
	for i := range c.Routes {
		r := &c.Routes[i]
		r.Sources = slices.Clone(r.Sources)
		r.Fallback = slices.Clone(r.Fallback)
		r.Filters.ExcludeCategories = slices.Clone(r.Filters.ExcludeCategories)
		r.Filters.IncludeCategories = slices.Clone(r.Filters.IncludeCategories)
		if r.Rerank != nil {
			rr := *r.Rerank
			r.Rerank = &rr
		}
		if r.Diversity != nil {
			d := *r.Diversity
			r.Diversity = &d
		}
		if f := r.Filters.PriceMin; f != nil {
			v := *f
			r.Filters.PriceMin = &v
		}
		if f := r.Filters.PriceMax; f != nil {
			v := *f
			r.Filters.PriceMax = &v
		}
	}
	c.Rules = slices.Clone(c.Rules)
	for i := range c.Rules {
		c.Rules[i].Context = maps.Clone(c.Rules[i].Context)
	}
	c.Experiments = slices.Clone(c.Experiments)
	for i := range c.Experiments {
		c.Experiments[i].Arms = slices.Clone(c.Experiments[i].Arms)
	}
	return c
}
