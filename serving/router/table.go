package router

import "slices"

// table is routes.yaml compiled for requests: the validated Config, and what
// a request would otherwise rebuild from it on every call — routes and
// experiments by name, every rule's route or experiment resolved, every
// route's fallback chain and filter sets. compile builds it once, when a
// Config is set (New, SetConfig); nothing modifies it afterwards, so requests
// share it through the Router's atomic pointer without locks, and a request
// in flight keeps the table it started with while SetConfig swaps in another.
type table struct {
	// cfg is the Config as validated (defaults filled in). The compiled
	// entries below point into it; Router.Config hands out clones.
	cfg          Config
	routes       map[string]*route
	experiments  map[string]*experiment
	rules        []rule
	defaultRoute *route
	// modelFallbacks is the fallback chain of a request naming a model
	// (no route): Config.Fallback alone.
	modelFallbacks []string
}

// route is a Route compiled: the route itself and what its requests share.
type route struct {
	*Route // points into table.cfg.Routes
	// fallbacks is the route's own chain followed by Config.Fallback
	// (unless the route lists it already): the order backfill tries them.
	fallbacks []string
	// filters are the route's filters with their category sets and price
	// bounds built.
	filters routeFilters
	// rerankTopN (0 without a rerank) and diverse (a diversity stage) are
	// what the pool size depends on (route.pool).
	rerankTopN int
	diverse    bool
}

// experiment is an Experiment compiled: each arm's route and label.
type experiment struct {
	*Experiment // points into table.cfg.Experiments
	// routes[i] answers the users assigned arms[i].
	routes []*route
	// labels[i] is "experiment/arm", the Arm a response reports.
	labels []string
}

// rule is a Rule compiled: exactly one of route and experiment is set.
type rule struct {
	*Rule      // points into table.cfg.Rules
	route      *route
	experiment *experiment
}

// compile validates a copy of cfg (filling its defaults) and builds its
// table. The copy shares nothing with cfg, so the caller may go on changing
// cfg. Validate guarantees every name a rule, an arm or default_route uses
// is a route or an experiment, so every lookup below succeeds.
func compile(cfg Config) (*table, error) {
	t := &table{cfg: cfg.clone()}
	c := &t.cfg
	if err := c.Validate(); err != nil {
		return nil, err
	}
	t.routes = make(map[string]*route, len(c.Routes))
	for i := range c.Routes {
		rt := &c.Routes[i]
		chain := slices.Clone([]string(rt.Fallback))
		if !slices.Contains(chain, c.Fallback) {
			chain = append(chain, c.Fallback)
		}
		cr := &route{Route: rt, fallbacks: chain, filters: compileFilters(rt.Filters), diverse: rt.Diversity != nil}
		if rt.Rerank != nil {
			cr.rerankTopN = rt.Rerank.TopN
		}
		t.routes[rt.Name] = cr
	}
	t.defaultRoute = t.routes[c.DefaultRoute]
	t.experiments = make(map[string]*experiment, len(c.Experiments))
	for i := range c.Experiments {
		e := &experiment{Experiment: &c.Experiments[i]}
		for _, a := range e.Arms {
			e.routes = append(e.routes, t.routes[a.Route])
			e.labels = append(e.labels, e.Name+"/"+a.Name)
		}
		t.experiments[e.Name] = e
	}
	t.rules = make([]rule, len(c.Rules))
	for i := range c.Rules {
		ru := &c.Rules[i]
		t.rules[i] = rule{Rule: ru, route: t.routes[ru.Route], experiment: t.experiments[ru.Experiment]}
	}
	t.modelFallbacks = []string{c.Fallback}
	return t, nil
}
