package router_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// hangRec ignores its context and blocks until release is closed: a model
// gone wrong.
type hangRec struct{ release chan struct{} }

func (h hangRec) Close() error { return nil }
func (h hangRec) Recommend(context.Context, models.Query) ([]models.Scored, error) {
	<-h.release
	return nil, nil
}

func TestArmAssignment(t *testing.T) {
	cfg := baseConfig()
	cfg.Experiments = []router.Experiment{{Name: "exp", Salt: "s1", Arms: []router.Arm{
		{Name: "a", Route: "main", Percent: 50}, {Name: "b", Route: "blend", Percent: 30}, {Name: "c", Route: "short", Percent: 20},
	}}}
	cfg.Rules = []router.Rule{{Experiment: "exp"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	const users = 100000
	counts := map[string]int{}
	for u := range users {
		arm, err := cfg.Arm("exp", "user-"+strconv.Itoa(u), "")
		if err != nil {
			t.Fatal(err)
		}
		counts[arm]++
	}
	for _, a := range cfg.Experiments[0].Arms {
		share := 100 * float64(counts[a.Name]) / users
		if math.Abs(share-a.Percent) > 2 {
			t.Errorf("arm %s got %.2f%% of %d users; want %v%% ± 2", a.Name, share, users, a.Percent)
		}
	}
	// Sticky: the same user always gets the same arm; another salt
	// reshuffles.
	salted := cfg
	salted.Experiments = []router.Experiment{{Name: "exp", Salt: "s2", Arms: cfg.Experiments[0].Arms}}
	moved := 0
	for u := range 1000 {
		id := "user-" + strconv.Itoa(u)
		a1, _ := cfg.Arm("exp", id, "")
		a2, _ := cfg.Arm("exp", id, "")
		b, _ := salted.Arm("exp", id, "")
		if a1 != a2 {
			t.Fatalf("user %s assigned %s then %s", id, a1, a2)
		}
		if a1 != b {
			moved++
		}
	}
	if moved < 300 {
		t.Errorf("a new salt moved only %d of 1000 users", moved)
	}
	// Recommend reports the arm and answers from its route.
	r := newRouter(t, newTestModels().all, cfg)
	for u := range 50 {
		id := "user-" + strconv.Itoa(u)
		resp, err := r.Recommend(t.Context(), router.Request{UserID: id, K: 3})
		if err != nil {
			t.Fatal(err)
		}
		arm, _ := cfg.Arm("exp", id, "")
		want := map[string]string{"a": "main", "b": "blend", "c": "short"}[arm]
		if resp.Arm != "exp/"+arm || resp.Route != want {
			t.Errorf("user %s answered by %s arm %s; want %s arm exp/%s", id, resp.Route, resp.Arm, want, arm)
		}
	}
}

func TestRules(t *testing.T) {
	cfg := baseConfig()
	cfg.NewUserEvents = 2
	cfg.Rules = []router.Rule{
		{Context: map[string]string{"page": "cart"}, Route: "short"},
		{Context: map[string]string{"campaign": "*"}, User: router.UserKnown, Route: "blend"},
		{User: router.UserAnonymous, Route: "ownfb"},
		{User: router.UserNew, Route: "flaky"},
	}
	r := newRouter(t, newTestModels().all, cfg)
	tests := []struct {
		name string
		req  router.Request
		want string
	}{
		{"context match wins first", router.Request{UserID: "u1", Context: map[string]string{"page": "cart"}}, "short"},
		{"wildcard and known user (u1 has 2 events)", router.Request{UserID: "u1", Context: map[string]string{"campaign": "x"}}, "blend"},
		{"wildcard but new user (u2 has 1 event)", router.Request{UserID: "u2", Context: map[string]string{"campaign": "x"}}, "flaky"},
		{"anonymous session", router.Request{SessionItems: []string{"i3"}}, "ownfb"},
		{"unknown user is new", router.Request{UserID: "stranger"}, "flaky"},
		{"no rule matches a known user", router.Request{UserID: "u1"}, "main"},
		{"a named route bypasses rules", router.Request{UserID: "u2", Route: "main"}, "main"},
	}
	for _, tt := range tests {
		resp, err := r.Recommend(t.Context(), tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if resp.Route != tt.want {
			t.Errorf("%s: route %s; want %s", tt.name, resp.Route, tt.want)
		}
	}
}

// TestFailingAndHangingSources: an erroring source and one that hangs past
// its timeout are dropped; the request succeeds from the healthy source
// well inside its deadline. With no healthy source the fallback chain
// answers.
func TestFailingAndHangingSources(t *testing.T) {
	tm := newTestModels()
	hang := hangRec{release: make(chan struct{})}
	t.Cleanup(func() { close(hang.release) })
	tm.all.add("hang", "fake", hang)
	cfg := baseConfig()
	cfg.Routes = append(cfg.Routes,
		router.Route{Name: "mixed", Sources: []router.Source{{Model: "main"}, {Model: "broken"}, {Model: "hang", TimeoutMS: 30}}},
		router.Route{Name: "allbad", Sources: []router.Source{{Model: "broken"}, {Model: "hang", TimeoutMS: 30}},
			Fallback: router.Chain{"missing", "pop2"}},
	)
	r, reg := newRouterWithRegistry(t, tm.all, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := r.Recommend(ctx, router.Request{UserID: "u1", K: 3, Route: "mixed"})
	if err != nil {
		t.Fatalf("Recommend(mixed) error = %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Recommend(mixed) took %v; the hung source should be dropped at its 30 ms timeout", took)
	}
	if got := ids(resp.Items); !slices.Equal(got, []string{"i3", "i4", "i5"}) {
		t.Errorf("Recommend(mixed) = %v; want main's i3 i4 i5", got)
	}
	resp, err = r.Recommend(ctx, router.Request{UserID: "u1", K: 3, Route: "allbad"})
	if err != nil {
		t.Fatalf("Recommend(allbad) error = %v", err)
	}
	if got := ids(resp.Items); !slices.Equal(got, []string{"i20", "i19", "i18"}) || resp.Items[0].Sources[0] != "pop2" {
		t.Errorf("Recommend(allbad) = %v from %v; want pop2's i20 i19 i18 (missing skipped)", got, resp.Items[0].Sources)
	}
	for _, tt := range []struct {
		metric, route string
		want          float64
	}{
		{"recserve_recommend_requests_total", "mixed", 1},
		{"recserve_recommend_source_failures_total", "mixed", 2},
		{"recserve_recommend_fallbacks_total", "mixed", 0},
		{"recserve_recommend_errors_total", "mixed", 0},
		{"recserve_recommend_latency_seconds", "mixed", 1},
		{"recserve_recommend_requests_total", "allbad", 1},
		{"recserve_recommend_source_failures_total", "allbad", 2},
		{"recserve_recommend_fallbacks_total", "allbad", 1},
	} {
		if got := sample(t, reg, tt.metric, "arm", "", "route", tt.route); got != tt.want {
			t.Errorf("%s{route=%q} = %v; want %v", tt.metric, tt.route, got, tt.want)
		}
	}
}

// filterStore: p1..p6 shoes priced 10..60, h1 a hidden hat, o1 an
// out-of-stock hat. buyer viewed p1, bought p2.
func filterStore() *store.Memory {
	d := &dataset.Dataset{}
	for n := 1; n <= 6; n++ {
		d.Items = append(d.Items, dataset.Item{ID: fmt.Sprintf("p%d", n), Category: "shoes", Price: float64(10 * n)})
	}
	d.Items = append(d.Items,
		dataset.Item{ID: "h1", Category: "hats", Price: 5, Hidden: true},
		dataset.Item{ID: "o1", Category: "hats", Price: 5, OutOfStock: true},
		dataset.Item{ID: "n1", Category: "hats", Price: math.NaN()},
	)
	d.Interactions = []dataset.Interaction{
		{UserID: "buyer", ItemID: "p1", Event: dataset.View, Value: 1, Timestamp: 1},
		{UserID: "buyer", ItemID: "p2", Event: dataset.Purchase, Value: 1, Timestamp: 2},
	}
	return store.New(d)
}

func TestFilters(t *testing.T) {
	all := &fakeRec{items: ranked("h1", "o1", "n1", "p1", "p2", "p3", "p4", "p5", "p6")}
	ms := fakeModels{}
	ms.add("all", "fake", all)
	ms.add("empty", "fake", &fakeRec{})
	f := func(v float64) *float64 { return &v }
	route := func(name string, rf router.RouteFilters) router.Route {
		return router.Route{Name: name, Sources: []router.Source{{Model: "all"}}, Filters: rf, Fallback: router.Chain{"empty"}}
	}
	cfg := router.Config{DefaultRoute: "plain", Fallback: "empty", Routes: []router.Route{
		route("plain", router.RouteFilters{}),
		route("purchased", router.RouteFilters{Exclude: router.ExcludePurchased}),
		route("none", router.RouteFilters{Exclude: router.ExcludeNone}),
		route("stock", router.RouteFilters{IncludeOutOfStock: true}),
		route("cheap", router.RouteFilters{PriceMax: f(30)}),
		route("hats", router.RouteFilters{IncludeCategories: []string{"hats"}, IncludeOutOfStock: true}),
		route("noshoes", router.RouteFilters{ExcludeCategories: []string{"shoes"}}),
	}}
	r, err := router.New(router.Options{Models: ms, Store: filterStore(), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		route   string
		filters router.Filters
		want    []string
	}{
		{"default: no seen, hidden or out-of-stock items", "plain", router.Filters{}, []string{"n1", "p3", "p4", "p5", "p6"}},
		{"include_seen", "plain", router.Filters{IncludeSeen: true}, []string{"n1", "p1", "p2", "p3", "p4", "p5", "p6"}},
		{"route excludes purchased only", "purchased", router.Filters{}, []string{"n1", "p1", "p3", "p4", "p5", "p6"}},
		{"route excludes nothing from history", "none", router.Filters{}, []string{"n1", "p1", "p2", "p3", "p4", "p5", "p6"}},
		{"route keeps out-of-stock items", "stock", router.Filters{}, []string{"o1", "n1", "p3", "p4", "p5", "p6"}},
		{"route price cap drops unpriced items", "cheap", router.Filters{}, []string{"p3"}},
		{"request price range", "plain", router.Filters{PriceMin: f(35), PriceMax: f(55)}, []string{"p4", "p5"}},
		{"request and route bounds combine", "cheap", router.Filters{PriceMin: f(25)}, []string{"p3"}},
		{"route include categories", "hats", router.Filters{}, []string{"o1", "n1"}},
		{"route and request include intersect", "hats", router.Filters{IncludeCategories: []string{"shoes"}}, nil},
		{"route exclude categories", "noshoes", router.Filters{}, []string{"n1"}},
		{"request exclude items", "plain", router.Filters{ExcludeItems: []string{"p4", "n1"}}, []string{"p3", "p5", "p6"}},
	}
	for _, tt := range tests {
		resp, err := r.Recommend(t.Context(), router.Request{UserID: "buyer", K: 10, Route: tt.route, Filters: tt.filters})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := ids(resp.Items); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v; want %v", tt.name, got, tt.want)
		}
	}
	for _, bad := range []router.Filters{{PriceMin: f(math.NaN())}, {PriceMin: f(5), PriceMax: f(1)}} {
		if _, err := r.Recommend(t.Context(), router.Request{UserID: "buyer", Filters: bad}); err == nil {
			t.Errorf("Recommend(filters %+v) error = nil; want a field error", bad)
		}
	}
}

func TestDiversity(t *testing.T) {
	tm := newTestModels()
	cfg := baseConfig()
	// main ranks i1..i20: i1..i8 shoes, i9..i14 hats, i15..i20 bags.
	cfg.Routes = append(cfg.Routes,
		router.Route{Name: "capped", Sources: []router.Source{{Model: "main"}}, Diversity: &router.Diversity{MaxPerCategory: 2}},
		router.Route{Name: "mmr", Sources: []router.Source{{Model: "main"}}, Diversity: &router.Diversity{MMRLambda: 0.3}},
	)
	r := newRouter(t, tm.all, cfg)
	resp, err := r.Recommend(t.Context(), router.Request{UserID: "u1", K: 6, Route: "capped"})
	if err != nil {
		t.Fatal(err)
	}
	// u1 saw i1, i2: shoes i3, i4, then hats i9, i10, then bags i15, i16.
	if got, want := ids(resp.Items), []string{"i3", "i4", "i9", "i10", "i15", "i16"}; !slices.Equal(got, want) {
		t.Errorf("capped = %v; want %v", got, want)
	}
	resp, err = r.Recommend(t.Context(), router.Request{UserID: "u1", K: 3, Route: "mmr"})
	if err != nil {
		t.Fatal(err)
	}
	// MMR with a low λ over the pool of 4k = 12 (i3..i14: shoes and hats):
	// best shoe, best hat, then, every candidate being like one already
	// chosen, the most relevant.
	if got, want := ids(resp.Items), []string{"i3", "i9", "i4"}; !slices.Equal(got, want) {
		t.Errorf("mmr = %v; want %v", got, want)
	}
}

func TestRerankAndBlends(t *testing.T) {
	tm := newTestModels()
	tm.all.add("a", "fake", &fakeRec{items: ranked("i3", "i4", "i5")})
	tm.all.add("b", "fake", &fakeRec{items: ranked("i5", "i6")})
	cfg := baseConfig()
	cfg.Routes = append(cfg.Routes,
		// fakeScorer scores iN as N/100: the rerank reverses main's order.
		router.Route{Name: "rerank", Sources: []router.Source{{Model: "main"}}, Rerank: &router.Rerank{Model: "scorer", TopN: 4}},
		router.Route{Name: "rrf", Blend: router.BlendRRF, RRFK: 1, Sources: []router.Source{{Model: "a"}, {Model: "b", Weight: 2}}},
		router.Route{Name: "rank", Blend: router.BlendRank, Sources: []router.Source{{Model: "a"}, {Model: "b"}}},
		router.Route{Name: "badrerank", Sources: []router.Source{{Model: "main"}}, Rerank: &router.Rerank{Model: "main"}},
	)
	r := newRouter(t, tm.all, cfg)
	tests := []struct {
		route string
		k     int
		want  []string
	}{
		// main gives u1 i3 i4 i5 i6 (top 4, re-scored: i6 best) then i7.
		{"rerank", 5, []string{"i6", "i5", "i4", "i3", "i7"}},
		// RRF, k=1: i3 1/2, i4 1/3, i5 1/4 + 2/2, i6 2/3 → i5, i6, i3, i4.
		{"rrf", 4, []string{"i5", "i6", "i3", "i4"}},
		// rank: i3 1, i4 2/3, i5 1/3 + 1, i6 1/2 → i5, i3, i4, i6.
		{"rank", 4, []string{"i5", "i3", "i4", "i6"}},
		// A rerank model that cannot score leaves the order as it was.
		{"badrerank", 3, []string{"i3", "i4", "i5"}},
	}
	for _, tt := range tests {
		resp, err := r.Recommend(t.Context(), router.Request{UserID: "u1", K: tt.k, Route: tt.route})
		if err != nil {
			t.Fatalf("%s: %v", tt.route, err)
		}
		if got := ids(resp.Items); !slices.Equal(got, tt.want) {
			t.Errorf("%s = %v; want %v", tt.route, got, tt.want)
		}
		if tt.route == "rerank" && !slices.ContainsFunc(resp.Models, func(m router.ModelVersion) bool { return m.Name == "scorer" }) {
			t.Errorf("rerank response models %v; want the scorer listed", resp.Models)
		}
	}
}

// TestSourceCandidates checks through Recommend how many items each model
// is asked for: 2k for a user with a history, top_n or 4k when a rerank or
// diversity stage pools more, a source's candidates exactly, k for a cold
// model override, and the missing count for a backfill.
func TestSourceCandidates(t *testing.T) {
	tm := newTestModels()
	cfg := baseConfig()
	cfg.Routes = append(cfg.Routes,
		router.Route{Name: "rerank", Sources: []router.Source{{Model: "main"}}, Rerank: &router.Rerank{Model: "scorer", TopN: 30}},
		router.Route{Name: "diverse", Sources: []router.Source{{Model: "main"}}, Diversity: &router.Diversity{MaxPerCategory: 2}},
		router.Route{Name: "pinned", Sources: []router.Source{{Model: "main", Candidates: 7}}, Diversity: &router.Diversity{MaxPerCategory: 2}},
	)
	r := newRouter(t, tm.all, cfg)
	tests := []struct {
		name  string
		req   router.Request
		model *fakeRec
		want  int
	}{
		{"route, history", router.Request{UserID: "u1", K: 5}, tm.main, 10},
		{"rerank pools top_n", router.Request{UserID: "u1", K: 5, Route: "rerank"}, tm.main, 60},
		{"diversity pools 4k", router.Request{UserID: "u1", K: 5, Route: "diverse"}, tm.main, 40},
		{"candidates pinned", router.Request{UserID: "u1", K: 5, Route: "pinned"}, tm.main, 7},
		{"cold model override", router.Request{UserID: "stranger", K: 5, Model: "main"}, tm.main, 5},
		// short knows i1..i3 and u1 saw i1, i2: one item, nine missing.
		{"backfill asks for the missing count", router.Request{UserID: "u1", K: 10, Route: "short"}, tm.pop, 9},
	}
	for _, tt := range tests {
		if _, err := r.Recommend(t.Context(), tt.req); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := tt.model.lastQuery().K; got != tt.want {
			t.Errorf("%s: model asked for K = %d; want %d", tt.name, got, tt.want)
		}
	}
}

// TestConfigReloadUnderLoad swaps configurations while requests run: every
// request succeeds on one of the two, and an invalid configuration is
// rejected with the previous one still serving.
func TestConfigReloadUnderLoad(t *testing.T) {
	tm := newTestModels()
	a := baseConfig()
	b := baseConfig()
	b.DefaultRoute = "short"
	r := newRouter(t, tm.all, a)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				resp, err := r.Recommend(context.Background(), router.Request{UserID: fmt.Sprintf("u%d", (w+n)%3), K: 2})
				if err != nil {
					errs <- err
					return
				}
				if resp.Route != "main" && resp.Route != "short" {
					errs <- fmt.Errorf("route %q from neither config", resp.Route)
					return
				}
			}
		}()
	}
	swaps := 0
	for ctx.Err() == nil {
		cfg := a
		if swaps%2 == 1 {
			cfg = b
		}
		if err := r.SetConfig(cfg); err != nil {
			t.Fatal(err)
		}
		swaps++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	before := r.Config()
	bad := baseConfig()
	bad.DefaultRoute = "nope"
	if err := r.SetConfig(bad); err == nil {
		t.Fatalf("SetConfig(invalid) error = nil")
	}
	if after := r.Config(); after.DefaultRoute != before.DefaultRoute {
		t.Errorf("an invalid config replaced the old one: default route %q, was %q", after.DefaultRoute, before.DefaultRoute)
	}
	t.Logf("%d swaps under load", swaps)
}
