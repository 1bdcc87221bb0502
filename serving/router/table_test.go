package router

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/recserve/recserve/internal/bucket"
)

func fptr(v float64) *float64 { return &v }

// tableConfig has a route of each shape compile cares about: no fallback, a
// chain without the global fallback, one that lists it, filters with
// categories and prices, and rules on context, user state and an experiment.
func tableConfig() Config {
	return Config{
		Fallback: "pop",
		Rules: []Rule{
			{Context: map[string]string{"page": "cart"}, Route: "filtered"},
			{Context: map[string]string{"campaign": "*"}, User: UserKnown, Experiment: "exp"},
			{User: UserAnonymous, Route: "chain"},
			{User: UserNew, Experiment: "exp"},
		},
		Experiments: []Experiment{{Name: "exp", Arms: []Arm{
			{Name: "control", Route: "plain", Percent: 60}, {Name: "off", Route: "chain", Percent: 0},
			{Name: "test", Route: "filtered", Percent: 40},
		}}},
		Routes: []Route{
			{Name: "plain", Sources: []Source{{Model: "a"}}},
			{Name: "chain", Sources: []Source{{Model: "a"}}, Fallback: Chain{"trend", "content"}},
			{Name: "listed", Sources: []Source{{Model: "a"}}, Fallback: Chain{"pop", "trend"}},
			{Name: "filtered", Sources: []Source{{Model: "a"}, {Model: "b", Weight: 2}}, Filters: RouteFilters{
				Exclude: ExcludePurchased, PriceMin: fptr(5), PriceMax: fptr(50),
				ExcludeCategories: []string{"gift", "books", "gift"}, IncludeCategories: []string{"shoes"},
			}},
		},
	}
}

// compiledRoute is what a test expects compile to have built for one route.
type compiledRoute struct {
	fallbacks                []string
	exclude                  string
	excludeCats, includeCats []string // sorted; nil for no set
	lo, hi                   float64
}

func keys(s map[string]struct{}) []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s))
}

func TestCompile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name         string
		cfg          Config
		defaultRoute string
		routes       map[string]compiledRoute
		// experiments maps an experiment to its arms' routes and labels.
		experiments    map[string][][2]string
		rules          [][2]string // per rule: route, experiment
		modelFallbacks []string
	}{
		{
			name: "default config", cfg: DefaultConfig(), defaultRoute: DefaultRouteName,
			routes: map[string]compiledRoute{
				DefaultRouteName: {fallbacks: []string{DefaultFallback}, exclude: ExcludeSeen, lo: -inf, hi: inf},
			},
			experiments: map[string][][2]string{}, rules: [][2]string{}, modelFallbacks: []string{DefaultFallback},
		},
		{
			name: "every shape", cfg: tableConfig(), defaultRoute: "plain",
			routes: map[string]compiledRoute{
				"plain":  {fallbacks: []string{"pop"}, exclude: ExcludeSeen, lo: -inf, hi: inf},
				"chain":  {fallbacks: []string{"trend", "content", "pop"}, exclude: ExcludeSeen, lo: -inf, hi: inf},
				"listed": {fallbacks: []string{"pop", "trend"}, exclude: ExcludeSeen, lo: -inf, hi: inf},
				"filtered": {fallbacks: []string{"pop"}, exclude: ExcludePurchased,
					excludeCats: []string{"books", "gift"}, includeCats: []string{"shoes"}, lo: 5, hi: 50},
			},
			experiments:    map[string][][2]string{"exp": {{"plain", "exp/control"}, {"chain", "exp/off"}, {"filtered", "exp/test"}}},
			rules:          [][2]string{{"filtered", ""}, {"", "exp"}, {"chain", ""}, {"", "exp"}},
			modelFallbacks: []string{"pop"},
		},
		{
			name: "named default route, price floor only",
			cfg: Config{DefaultRoute: "b", Fallback: "f", Routes: []Route{
				{Name: "a", Sources: []Source{{Model: "m"}}},
				{Name: "b", Sources: []Source{{Model: "m"}}, Fallback: Chain{"f"}, Filters: RouteFilters{PriceMin: fptr(0)}},
			}},
			defaultRoute: "b",
			routes: map[string]compiledRoute{
				"a": {fallbacks: []string{"f"}, exclude: ExcludeSeen, lo: -inf, hi: inf},
				"b": {fallbacks: []string{"f"}, exclude: ExcludeSeen, lo: 0, hi: inf},
			},
			experiments: map[string][][2]string{}, rules: [][2]string{}, modelFallbacks: []string{"f"},
		},
	}
	for _, tt := range tests {
		tab, err := compile(tt.cfg)
		if err != nil {
			t.Fatalf("%s: compile: %v", tt.name, err)
		}
		if tab.defaultRoute == nil || tab.defaultRoute.Name != tt.defaultRoute {
			t.Errorf("%s: defaultRoute = %v; want %s", tt.name, tab.defaultRoute, tt.defaultRoute)
		}
		got := map[string]compiledRoute{}
		for name, rt := range tab.routes {
			if rt.Name != name {
				t.Errorf("%s: routes[%q].Name = %q", tt.name, name, rt.Name)
			}
			if i := slices.IndexFunc(tab.cfg.Routes, func(r Route) bool { return r.Name == name }); i < 0 || rt.Route != &tab.cfg.Routes[i] {
				t.Errorf("%s: routes[%q] does not point into the table's Config", tt.name, name)
			}
			f := rt.filters
			got[name] = compiledRoute{fallbacks: rt.fallbacks, exclude: f.exclude,
				excludeCats: keys(f.excludeCats), includeCats: keys(f.includeCats), lo: f.lo, hi: f.hi}
		}
		if !reflect.DeepEqual(got, tt.routes) {
			t.Errorf("%s: compiled routes = %+v; want %+v", tt.name, got, tt.routes)
		}
		gotExp := map[string][][2]string{}
		for name, e := range tab.experiments {
			if e.Name != name {
				t.Errorf("%s: experiments[%q].Name = %q", tt.name, name, e.Name)
			}
			arms := [][2]string{}
			for i := range e.Arms {
				arms = append(arms, [2]string{e.routes[i].Name, e.labels[i]})
			}
			gotExp[name] = arms
		}
		if !reflect.DeepEqual(gotExp, tt.experiments) {
			t.Errorf("%s: compiled experiments = %v; want %v", tt.name, gotExp, tt.experiments)
		}
		gotRules := [][2]string{}
		for i, ru := range tab.rules {
			var pair [2]string
			if ru.route != nil {
				pair[0] = ru.route.Name
			}
			if ru.experiment != nil {
				pair[1] = ru.experiment.Name
			}
			if ru.Rule != &tab.cfg.Rules[i] {
				t.Errorf("%s: rules[%d] does not point into the table's Config", tt.name, i)
			}
			gotRules = append(gotRules, pair)
		}
		if !reflect.DeepEqual(gotRules, tt.rules) {
			t.Errorf("%s: compiled rules = %v; want %v", tt.name, gotRules, tt.rules)
		}
		if !slices.Equal(tab.modelFallbacks, tt.modelFallbacks) {
			t.Errorf("%s: modelFallbacks = %v; want %v", tt.name, tab.modelFallbacks, tt.modelFallbacks)
		}
	}
}

// TestCompileSharesNothing: the table is built from a copy, so the caller
// changing its Config afterwards (as SetConfig's callers may) changes no
// route of the table, and a bad Config compiles to an error.
func TestCompileSharesNothing(t *testing.T) {
	cfg := tableConfig()
	tab, err := compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Routes[1].Fallback[0] = "changed"
	cfg.Routes[3].Filters.ExcludeCategories[0] = "changed"
	*cfg.Routes[3].Filters.PriceMin = 1000
	cfg.Rules[0].Context["page"] = "changed"
	cfg.Experiments[0].Arms[0].Route = "filtered"
	if got := tab.routes["chain"].fallbacks; !slices.Equal(got, []string{"trend", "content", "pop"}) {
		t.Errorf("chain fallbacks after the caller's change = %v", got)
	}
	if f := tab.routes["filtered"].filters; f.lo != 5 || keys(f.excludeCats)[1] != "gift" {
		t.Errorf("filtered filters after the caller's change = %+v", f)
	}
	if got := tab.cfg.Rules[0].Context["page"]; got != "cart" {
		t.Errorf("rule context after the caller's change = %q", got)
	}
	if got := tab.experiments["exp"].routes[0].Name; got != "plain" {
		t.Errorf("arm route after the caller's change = %q", got)
	}
	bad := tableConfig()
	bad.Rules = append(bad.Rules, Rule{Route: "nowhere"})
	if _, err := compile(bad); err == nil {
		t.Error("compile(rule naming a missing route) = nil error")
	}
}

// oldResolve is route resolution as it was before routes.yaml was compiled:
// linear scans of the Config on every request, the arm's route by name, the
// fallback chain cloned and extended. It returns route, arm and chain.
func oldResolve(cfg *Config, req Request, events int) (string, string, []string) {
	find := func(name string) *Route {
		for i := range cfg.Routes {
			if cfg.Routes[i].Name == name {
				return &cfg.Routes[i]
			}
		}
		return nil
	}
	name, arm := req.Route, ""
	if name == "" {
		name = cfg.DefaultRoute
		for _, rule := range cfg.Rules {
			if !rule.matches(req, events, cfg.NewUserEvents) {
				continue
			}
			name = rule.Route
			if rule.Experiment != "" {
				var e *Experiment
				for i := range cfg.Experiments {
					if cfg.Experiments[i].Name == rule.Experiment {
						e = &cfg.Experiments[i]
					}
				}
				x := bucket.Percent(e.Salt, assignmentKey(req))
				var cum float64
				a := e.Arms[len(e.Arms)-1]
				for _, c := range e.Arms {
					cum += c.Percent
					if x < cum {
						a = c
						break
					}
				}
				name, arm = a.Route, e.Name+"/"+a.Name
			}
			break
		}
	}
	rt := find(name)
	if rt == nil {
		return "", "", nil
	}
	chain := slices.Clone([]string(rt.Fallback))
	if !slices.Contains(chain, cfg.Fallback) {
		chain = append(chain, cfg.Fallback)
	}
	return rt.Name, arm, chain
}

// TestResolveMatchesOldLookup resolves requests of every kind (users known,
// new and anonymous, with and without matching context, named routes, a
// missing route) through the compiled table and through the old linear
// lookup, and wants the same route, arm and fallback chain.
func TestResolveMatchesOldLookup(t *testing.T) {
	cfg := tableConfig()
	tab, err := compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := tab.cfg.clone()
	r := &Router{}
	contexts := []map[string]string{nil, {"page": "cart"}, {"page": "home"}, {"campaign": "spring"}, {"campaign": "x", "page": "cart"}}
	routes := []string{"", "", "", "plain", "filtered", "missing"}
	n := 0
	for u := range 3000 {
		req := Request{UserID: "user-" + strconv.Itoa(u), Context: contexts[u%len(contexts)], Route: routes[u%len(routes)]}
		if u%7 == 0 {
			req.UserID, req.SessionItems = "", []string{"item-" + strconv.Itoa(u)}
		}
		events := u % 9 // around NewUserEvents (5)
		p, err := r.resolve(tab, req, events)
		wantRoute, wantArm, wantChain := oldResolve(&old, req, events)
		if wantRoute == "" {
			if err == nil {
				t.Errorf("resolve(%+v) = %s; want an error for a missing route", req, p.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("resolve(%+v): %v", req, err)
		}
		got := fmt.Sprint(p.name, " ", p.arm, " ", p.fallbacks, " ", p.route.Name, " ", len(p.sources))
		want := fmt.Sprint(wantRoute, " ", wantArm, " ", wantChain, " ", wantRoute, " ", len(old.Routes[slices.IndexFunc(old.Routes, func(r Route) bool { return r.Name == wantRoute })].Sources))
		if got != want {
			t.Errorf("resolve(%+v, events %d) = %s; want %s", req, events, got, want)
		}
		if wantArm != "" {
			n++
		}
	}
	if n == 0 {
		t.Error("no request was assigned an experiment arm")
	}
}
