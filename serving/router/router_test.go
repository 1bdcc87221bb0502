package router_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// baseConfig routes:
//
//	main:   main                      (default)
//	blend:  a (weight 2), b (weight 1)
//	flaky:  main, broken, missing
//	dead:   broken
//	short:  short
//	ownfb:  main, with fallback pop2
//
// The fallback is pop; the default scorer is scorer.
func baseConfig() router.Config {
	return router.Config{
		DefaultRoute:  "main",
		DefaultScorer: "scorer",
		Fallback:      "pop",
		Routes: []router.Route{
			{Name: "main", Sources: []router.Source{{Model: "main"}}},
			{Name: "blend", Sources: []router.Source{{Model: "a", Weight: 2}, {Model: "b", Weight: 1}}},
			{Name: "flaky", Sources: []router.Source{{Model: "main"}, {Model: "broken"}, {Model: "missing"}}},
			{Name: "dead", Sources: []router.Source{{Model: "broken"}}},
			{Name: "short", Sources: []router.Source{{Model: "short"}}},
			{Name: "ownfb", Sources: []router.Source{{Model: "main"}}, Fallback: router.Chain{"pop2"}},
		},
	}
}

// testModels holds the models baseConfig names. main ranks i1..i20; pop and
// pop2 rank i20..i1; short knows only i1..i3; broken always fails.
type testModels struct {
	all                    fakeModels
	main, pop, pop2, short *fakeRec
	broken                 *fakeRec
	scorer                 *fakeScorer
}

func newTestModels() *testModels {
	rev := allItems()
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i].ItemID, rev[j].ItemID = rev[j].ItemID, rev[i].ItemID
	}
	tm := &testModels{
		all:    fakeModels{},
		main:   &fakeRec{items: allItems()},
		pop:    &fakeRec{items: rev},
		pop2:   &fakeRec{items: rev},
		short:  &fakeRec{items: ranked("i1", "i2", "i3")},
		broken: &fakeRec{err: errBoom},
		scorer: &fakeScorer{},
	}
	tm.all.add("main", "fake", tm.main)
	tm.all.add("pop", "popularity", tm.pop)
	tm.all.add("pop2", "popularity", tm.pop2)
	tm.all.add("short", "fake", tm.short)
	tm.all.add("broken", "fake", tm.broken)
	tm.all.add("scorer", "gbm", tm.scorer)
	tm.all.add("plain", "plain", plainModel{})
	tm.all["notready"] = &fakeLease{version: "v1", kind: "fake"}
	return tm
}

func newRouter(t *testing.T, ms router.Models, cfg router.Config) *router.Router {
	t.Helper()
	r, err := router.New(router.Options{Models: ms, Store: testStore(), Config: cfg})
	if err != nil {
		t.Fatalf("router.New: %v", err)
	}
	return r
}

func ids(items []router.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ItemID
	}
	return out
}

func seq(from, to int) []string {
	var out []string
	for n := from; n <= to; n++ {
		out = append(out, fmt.Sprintf("i%d", n))
	}
	return out
}

func fieldOf(err error) string {
	var fe *models.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func TestNewRequiresModelsAndStore(t *testing.T) {
	if _, err := router.New(router.Options{Store: testStore(), Config: baseConfig()}); err == nil {
		t.Errorf("router.New(no Models) error = nil; want an error")
	}
	if _, err := router.New(router.Options{Models: fakeModels{}, Config: baseConfig()}); err == nil {
		t.Errorf("router.New(no Store) error = nil; want an error")
	}
	if _, err := router.New(router.Options{Models: fakeModels{}, Store: testStore()}); err == nil {
		t.Errorf("router.New(zero Config) error = nil; want an error")
	}
}

func TestRecommendValidation(t *testing.T) {
	r := newRouter(t, newTestModels().all, baseConfig())
	many := make([]string, router.MaxSessionItems+1)
	for i := range many {
		many[i] = "i1"
	}
	tests := []struct {
		name   string
		req    router.Request
		field  string
		target error // errors.Is target, nil for none
	}{
		{"negative k", router.Request{UserID: "u1", K: -1}, "k", nil},
		{"k above max", router.Request{UserID: "u1", K: router.MaxK + 1}, "k", nil},
		{"no user and no session", router.Request{K: 5}, "user_id", nil},
		{"empty session item", router.Request{UserID: "u1", SessionItems: []string{"i1", ""}}, "session_items[1]", nil},
		{"too many session items", router.Request{UserID: "u1", SessionItems: many}, "session_items", nil},
		{"unknown route", router.Request{UserID: "u1", Route: "nope"}, "route", models.ErrNotFound},
		{"unknown model", router.Request{UserID: "u1", Model: "nope"}, "model", models.ErrNotFound},
		{"model not ready", router.Request{UserID: "u1", Model: "notready"}, "model", models.ErrNotReady},
		{"model cannot recommend", router.Request{UserID: "u1", Model: "scorer"}, "model", nil},
		{"model with no role", router.Request{UserID: "u1", Model: "plain"}, "model", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := r.Recommend(t.Context(), tt.req)
			if err == nil {
				t.Fatalf("Recommend(%+v) = %v, nil; want a FieldError on %q", tt.req, ids(resp.Items), tt.field)
			}
			if got := fieldOf(err); got != tt.field {
				t.Errorf("Recommend(%+v) error field = %q (%v); want %q", tt.req, got, err, tt.field)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("Recommend(%+v) error = %v; want errors.Is %v", tt.req, err, tt.target)
			}
			if !strings.HasPrefix(err.Error(), tt.field+": ") {
				t.Errorf("Recommend(%+v) error = %q; want it to start with %q", tt.req, err, tt.field+": ")
			}
		})
	}
}

func TestRecommendK(t *testing.T) {
	r := newRouter(t, newTestModels().all, baseConfig())
	tests := []struct {
		k, want int
	}{
		{0, router.DefaultK},
		{1, 1},
		{7, 7},
		{router.MaxK, 18}, // every item but u1's two seen ones
	}
	for _, tt := range tests {
		resp, err := r.Recommend(t.Context(), router.Request{UserID: "u1", K: tt.k})
		if err != nil {
			t.Errorf("Recommend(k=%d) error = %v; want nil", tt.k, err)
			continue
		}
		if got := len(resp.Items); got != tt.want {
			t.Errorf("len(Recommend(k=%d).Items) = %d; want %d", tt.k, got, tt.want)
		}
	}
}

func TestRecommendSeenExclusion(t *testing.T) {
	tm := newTestModels()
	r := newRouter(t, tm.all, baseConfig())
	tests := []struct {
		name string
		req  router.Request
		want []string
	}{
		{"history excluded by default", router.Request{UserID: "u1", K: 4}, seq(3, 6)},
		{"include_seen", router.Request{UserID: "u1", K: 4, Filters: router.Filters{IncludeSeen: true}}, seq(1, 4)},
		{"session items excluded too", router.Request{UserID: "u1", K: 3, SessionItems: []string{"i4"}}, []string{"i3", "i5", "i6"}},
		{"anonymous session", router.Request{K: 3, SessionItems: []string{"i1", "i3"}}, []string{"i2", "i4", "i5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := r.Recommend(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("Recommend(%+v) error = %v", tt.req, err)
			}
			if got := ids(resp.Items); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Recommend(%+v) = %v; want %v", tt.req, got, tt.want)
			}
			if resp.ColdStart {
				t.Errorf("Recommend(%+v).ColdStart = true; want false", tt.req)
			}
			if resp.Route != "main" {
				t.Errorf("Recommend(%+v).Route = %q; want main", tt.req, resp.Route)
			}
			for _, it := range resp.Items {
				if !reflect.DeepEqual(it.Sources, []string{"main"}) {
					t.Errorf("Recommend(%+v) item %s sources = %v; want [main]", tt.req, it.ItemID, it.Sources)
				}
			}
		})
	}
}

func TestRecommendHistoryPassedToModels(t *testing.T) {
	tm := newTestModels()
	r := newRouter(t, tm.all, baseConfig())
	ctx := map[string]string{"page": "home"}
	if _, err := r.Recommend(t.Context(), router.Request{UserID: "u1", K: 3, SessionItems: []string{"i7"}, Context: ctx}); err != nil {
		t.Fatal(err)
	}
	q := tm.main.lastQuery()
	var got []string
	for _, in := range q.History {
		got = append(got, in.ItemID)
	}
	if want := []string{"i1", "i2", "i7"}; !reflect.DeepEqual(got, want) {
		t.Errorf("model saw history %v; want %v (stored oldest first, then session)", got, want)
	}
	if q.UserID != "u1" || q.Context["page"] != "home" {
		t.Errorf("model saw UserID %q Context %v; want u1 and page=home", q.UserID, q.Context)
	}
	if q.K != 6 {
		t.Errorf("model saw K = %d; want 2*k = 6 for a user with history", q.K)
	}
}

func TestRecommendFilters(t *testing.T) {
	r := newRouter(t, newTestModels().all, baseConfig())
	tests := []struct {
		name string
		f    router.Filters
		k    int
		want []string
	}{
		{"exclude items", router.Filters{ExcludeItems: []string{"i3", "i5"}}, 3, []string{"i4", "i6", "i7"}},
		{"exclude category", router.Filters{ExcludeCategories: []string{"shoes"}}, 3, seq(9, 11)},
		{"exclude two categories", router.Filters{ExcludeCategories: []string{"shoes", "hats"}}, 3, seq(15, 17)},
		// Only 6 bags exist; the fallback must respect the filter too.
		{"include category", router.Filters{IncludeCategories: []string{"bags"}}, 10, seq(15, 20)},
		{"include wins over nothing, exclude wins over include", router.Filters{IncludeCategories: []string{"hats", "bags"}, ExcludeCategories: []string{"hats"}}, 3, seq(15, 17)},
		{"include with excluded items", router.Filters{IncludeCategories: []string{"hats"}, ExcludeItems: []string{"i9"}}, 3, seq(10, 12)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := router.Request{UserID: "u1", K: tt.k, Filters: tt.f}
			resp, err := r.Recommend(t.Context(), req)
			if err != nil {
				t.Fatalf("Recommend(%+v) error = %v", req, err)
			}
			if got := ids(resp.Items); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Recommend(%+v) = %v; want %v", req, got, tt.want)
			}
		})
	}
}

func TestRecommendColdStart(t *testing.T) {
	tests := []struct {
		name        string
		req         router.Request
		wantRoute   string
		wantModel   string
		wantItems   []string
		wantSources []string
		mainCalls   int
	}{
		{
			name:      "unknown user gets the fallback",
			req:       router.Request{UserID: "stranger", K: 3},
			wantRoute: "main", wantModel: "pop",
			wantItems: seq(18, 20), wantSources: []string{"pop"},
		},
		{
			name:      "route's own fallback",
			req:       router.Request{UserID: "stranger", K: 2, Route: "ownfb"},
			wantRoute: "ownfb", wantModel: "pop2",
			wantItems: seq(19, 20), wantSources: []string{"pop2"},
		},
		{
			name:      "model override is honoured for a cold user",
			req:       router.Request{UserID: "stranger", K: 2, Model: "main"},
			wantRoute: "model:main", wantModel: "main",
			wantItems: seq(1, 2), wantSources: []string{"main"}, mainCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := newTestModels()
			r := newRouter(t, tm.all, baseConfig())
			resp, err := r.Recommend(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("Recommend(%+v) error = %v; want nil (cold start is not an error)", tt.req, err)
			}
			if !resp.ColdStart {
				t.Errorf("Recommend(%+v).ColdStart = false; want true", tt.req)
			}
			if resp.Route != tt.wantRoute {
				t.Errorf("Recommend(%+v).Route = %q; want %q", tt.req, resp.Route, tt.wantRoute)
			}
			got := ids(resp.Items)
			// pop ranks i20 first.
			want := tt.wantItems
			if tt.wantModel != "main" {
				want = reverse(want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Recommend(%+v) = %v; want %v", tt.req, got, want)
			}
			for _, it := range resp.Items {
				if !reflect.DeepEqual(it.Sources, tt.wantSources) {
					t.Errorf("Recommend(%+v) item %s sources = %v; want %v", tt.req, it.ItemID, it.Sources, tt.wantSources)
				}
			}
			if want := []router.ModelVersion{{Name: tt.wantModel, Version: "v1"}}; !reflect.DeepEqual(resp.Models, want) {
				t.Errorf("Recommend(%+v).Models = %v; want %v", tt.req, resp.Models, want)
			}
			if got := tm.main.calls(); got != tt.mainCalls {
				t.Errorf("main model called %d times; want %d", got, tt.mainCalls)
			}
		})
	}
}

func reverse(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[len(xs)-1-i] = x
	}
	return out
}

func TestRecommendBackfill(t *testing.T) {
	tests := []struct {
		name string
		req  router.Request
		want []string
	}{
		// short proposes i1..i3; pop (i20 first) tops up, skipping u2's i9.
		{"known user", router.Request{UserID: "u2", K: 10, Route: "short"},
			[]string{"i1", "i2", "i3", "i20", "i19", "i18", "i17", "i16", "i15", "i14"}},
		{"anonymous session", router.Request{SessionItems: []string{"i2", "i20"}, K: 5, Route: "short"},
			[]string{"i1", "i3", "i19", "i18", "i17"}},
		{"small k", router.Request{UserID: "u2", K: 4, Route: "short"},
			[]string{"i1", "i2", "i3", "i20"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := newTestModels()
			r := newRouter(t, tm.all, baseConfig())
			resp, err := r.Recommend(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("Recommend(%+v) error = %v", tt.req, err)
			}
			if got := ids(resp.Items); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Recommend(%+v) = %v; want %v", tt.req, got, tt.want)
			}
			for i := 1; i < len(resp.Items); i++ {
				if !(resp.Items[i].Score < resp.Items[i-1].Score) {
					t.Errorf("Recommend(%+v) scores %v then %v at %d; want strictly decreasing", tt.req, resp.Items[i-1].Score, resp.Items[i].Score, i)
				}
			}
			for _, it := range resp.Items {
				want := []string{"pop"}
				if it.ItemID == "i1" || it.ItemID == "i2" || it.ItemID == "i3" {
					want = []string{"short"}
				}
				if !reflect.DeepEqual(it.Sources, want) {
					t.Errorf("Recommend(%+v) item %s sources = %v; want %v", tt.req, it.ItemID, it.Sources, want)
				}
			}
			wantModels := []router.ModelVersion{{Name: "short", Version: "v1"}, {Name: "pop", Version: "v1"}}
			if !reflect.DeepEqual(resp.Models, wantModels) {
				t.Errorf("Recommend(%+v).Models = %v; want %v", tt.req, resp.Models, wantModels)
			}
		})
	}
}

func TestRecommendNoBackfillForModelOverride(t *testing.T) {
	tm := newTestModels()
	r := newRouter(t, tm.all, baseConfig())
	resp, err := r.Recommend(t.Context(), router.Request{UserID: "u2", K: 10, Model: "short"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(resp.Items), seq(1, 3); !reflect.DeepEqual(got, want) {
		t.Errorf("Recommend(model=short, k=10) = %v; want %v (no backfill)", got, want)
	}
	if tm.pop.calls() != 0 {
		t.Errorf("fallback called %d times for a model override; want 0", tm.pop.calls())
	}
}

func TestRecommendFailingSourceIsDropped(t *testing.T) {
	tm := newTestModels()
	r := newRouter(t, tm.all, baseConfig())
	resp, err := r.Recommend(t.Context(), router.Request{UserID: "u1", K: 3, Route: "flaky"})
	if err != nil {
		t.Fatalf("Recommend(route=flaky) error = %v; want nil", err)
	}
	if got, want := ids(resp.Items), seq(3, 5); !reflect.DeepEqual(got, want) {
		t.Errorf("Recommend(route=flaky) = %v; want %v", got, want)
	}
	// Only main contributed: its raw scores are kept.
	if got := resp.Items[0].Score; got != 18 {
		t.Errorf("Recommend(route=flaky) first score = %v; want 18 (main's own score)", got)
	}
	if want := []router.ModelVersion{{Name: "main", Version: "v1"}}; !reflect.DeepEqual(resp.Models, want) {
		t.Errorf("Recommend(route=flaky).Models = %v; want %v", resp.Models, want)
	}
	if tm.broken.calls() != 1 {
		t.Errorf("broken model called %d times; want 1", tm.broken.calls())
	}
}

func TestRecommendAllSourcesFailUsesFallback(t *testing.T) {
	tm := newTestModels()
	r := newRouter(t, tm.all, baseConfig())
	resp, err := r.Recommend(t.Context(), router.Request{UserID: "u1", K: 3, Route: "dead"})
	if err != nil {
		t.Fatalf("Recommend(route=dead) error = %v; want nil", err)
	}
	if got, want := ids(resp.Items), reverse(seq(18, 20)); !reflect.DeepEqual(got, want) {
		t.Errorf("Recommend(route=dead) = %v; want %v", got, want)
	}
	if want := []router.ModelVersion{{Name: "pop", Version: "v1"}}; !reflect.DeepEqual(resp.Models, want) {
		t.Errorf("Recommend(route=dead).Models = %v; want %v", resp.Models, want)
	}
}

func TestRecommendErrors(t *testing.T) {
	deadFallback := baseConfig()
	deadFallback.Fallback = "broken"
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		cfg    router.Config
		ctx    context.Context
		req    router.Request
		target error
	}{
		{"model override fails", baseConfig(), context.Background(), router.Request{UserID: "u1", Model: "broken"}, errBoom},
		{"route and fallback fail", deadFallback, context.Background(), router.Request{UserID: "u1", Route: "dead"}, errBoom},
		{"cold start and fallback fail", deadFallback, context.Background(), router.Request{UserID: "stranger"}, errBoom},
		{"cancelled", baseConfig(), cancelled, router.Request{UserID: "u1"}, context.Canceled},
		{"cancelled anonymous", baseConfig(), cancelled, router.Request{SessionItems: []string{"i1"}, Route: "flaky"}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(t, newTestModels().all, tt.cfg)
			resp, err := r.Recommend(tt.ctx, tt.req)
			if !errors.Is(err, tt.target) {
				t.Fatalf("Recommend(%+v) = %v, %v; want error %v", tt.req, ids(resp.Items), err, tt.target)
			}
			if f := fieldOf(err); f != "" {
				t.Errorf("Recommend(%+v) error is a FieldError on %q; want a server-side error", tt.req, f)
			}
		})
	}
}

func TestRecommendBlend(t *testing.T) {
	ms := fakeModels{}
	ms.add("a", "fake", &fakeRec{items: []models.Scored{{ItemID: "i1", Score: 4}, {ItemID: "i2", Score: 3}, {ItemID: "i3", Score: 2}, {ItemID: "i4", Score: 1}}})
	ms.add("b", "fake", &fakeRec{items: []models.Scored{{ItemID: "i3", Score: 10}, {ItemID: "i5", Score: 6}, {ItemID: "i1", Score: 2}}})
	ms.add("pop", "popularity", &fakeRec{items: allItems()})
	r := newRouter(t, ms, baseConfig())
	resp, err := r.Recommend(t.Context(), router.Request{UserID: "u2", K: 5, Route: "blend"})
	if err != nil {
		t.Fatal(err)
	}
	// a (weight 2) normalised: i1 1, i2 2/3, i3 1/3, i4 0; b: i3 1, i5 .5, i1 0.
	want := []router.Item{
		{ItemID: "i1", Score: 2, Sources: []string{"a", "b"}},
		{ItemID: "i3", Score: 2.0/3 + 1, Sources: []string{"a", "b"}},
		{ItemID: "i2", Score: 4.0 / 3, Sources: []string{"a"}},
		{ItemID: "i5", Score: 0.5, Sources: []string{"b"}},
		{ItemID: "i4", Score: 0, Sources: []string{"a"}},
	}
	if len(resp.Items) != len(want) {
		t.Fatalf("Recommend(route=blend) = %v; want %v", resp.Items, want)
	}
	for i, got := range resp.Items {
		w := want[i]
		if got.ItemID != w.ItemID || math.Abs(got.Score-w.Score) > 1e-12 || !reflect.DeepEqual(got.Sources, w.Sources) {
			t.Errorf("Recommend(route=blend).Items[%d] = %+v; want %+v", i, got, w)
		}
	}
	if wantM := []router.ModelVersion{{Name: "a", Version: "v1"}, {Name: "b", Version: "v1"}}; !reflect.DeepEqual(resp.Models, wantM) {
		t.Errorf("Recommend(route=blend).Models = %v; want %v", resp.Models, wantM)
	}
}

func TestScore(t *testing.T) {
	tm := newTestModels()
	r := newRouter(t, tm.all, baseConfig())
	tests := []struct {
		name string
		req  router.ScoreRequest
		want []float64
	}{
		{"default scorer keeps request order", router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i3", "i1", "i20"}}, []float64{0.03, 0.01, 0.2}},
		{"named scorer", router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i2"}, Model: "scorer"}, []float64{0.02}},
		{"unknown user", router.ScoreRequest{UserID: "stranger", ItemIDs: []string{"i5", "i4"}}, []float64{0.05, 0.04}},
		{"anonymous session", router.ScoreRequest{SessionItems: []string{"i1"}, ItemIDs: []string{"i7"}}, []float64{0.07}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := r.Score(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("Score(%+v) error = %v", tt.req, err)
			}
			if !reflect.DeepEqual(resp.Scores, tt.want) {
				t.Errorf("Score(%+v) = %v; want %v", tt.req, resp.Scores, tt.want)
			}
			if want := (router.ModelVersion{Name: "scorer", Version: "v1"}); resp.Model != want {
				t.Errorf("Score(%+v).Model = %v; want %v", tt.req, resp.Model, want)
			}
		})
	}
	_, err := r.Score(t.Context(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i5"}, SessionItems: []string{"i9"}})
	if err != nil {
		t.Fatal(err)
	}
	tm.scorer.mu.Lock()
	q := tm.scorer.last
	tm.scorer.mu.Unlock()
	var hist []string
	for _, in := range q.History {
		hist = append(hist, in.ItemID)
	}
	if want := []string{"i1", "i2", "i9"}; !reflect.DeepEqual(hist, want) || q.UserID != "u1" || q.K != 1 {
		t.Errorf("scorer saw user %q history %v K %d; want u1 %v 1", q.UserID, hist, q.K, want)
	}
}

func TestScoreErrors(t *testing.T) {
	tooMany := make([]string, router.MaxScoreItems+1)
	for i := range tooMany {
		tooMany[i] = "i1"
	}
	noDefault := baseConfig()
	noDefault.DefaultScorer = "nope"
	failing := fakeModels{}
	failing.add("bad", "gbm", &fakeScorer{err: errBoom})
	failing.add("short", "gbm", &fakeScorer{wrongSize: true})
	tests := []struct {
		name   string
		ms     fakeModels
		cfg    router.Config
		req    router.ScoreRequest
		field  string // "" when the error must not be a FieldError
		target error
	}{
		{"no user", nil, baseConfig(), router.ScoreRequest{ItemIDs: []string{"i1"}}, "user_id", nil},
		{"no items", nil, baseConfig(), router.ScoreRequest{UserID: "u1"}, "item_ids", nil},
		{"too many items", nil, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: tooMany}, "item_ids", nil},
		{"empty item", nil, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1", ""}}, "item_ids[1]", nil},
		{"empty session item", nil, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1"}, SessionItems: []string{""}}, "session_items[0]", nil},
		{"unknown item", nil, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1", "i2", "x"}}, "item_ids[2]", models.ErrNotFound},
		{"NaN context value", nil, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1"}, Context: map[string]string{"budget": "NaN"}}, `context["budget"]`, nil},
		{"infinite context value", nil, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1"}, Context: map[string]string{"budget": "-Inf"}}, `context["budget"]`, nil},
		{"empty context key", nil, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1"}, Context: map[string]string{"": "x"}}, "context", nil},
		{"unknown model", nil, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1"}, Model: "nope"}, "model", models.ErrNotFound},
		{"model not ready", nil, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1"}, Model: "notready"}, "model", models.ErrNotReady},
		{"model cannot score", nil, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1"}, Model: "main"}, "model", nil},
		{"default scorer missing", nil, noDefault, router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1"}}, "", models.ErrNotReady},
		{"scorer fails", failing, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1"}, Model: "bad"}, "", errBoom},
		{"scorer returns too few", failing, baseConfig(), router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1", "i2"}, Model: "short"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := tt.ms
			if ms == nil {
				ms = newTestModels().all
			}
			r := newRouter(t, ms, tt.cfg)
			resp, err := r.Score(t.Context(), tt.req)
			if err == nil {
				t.Fatalf("Score(%s) = %v, nil; want an error", tt.name, resp.Scores)
			}
			if got := fieldOf(err); got != tt.field {
				t.Errorf("Score(%s) error field = %q (%v); want %q", tt.name, got, err, tt.field)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("Score(%s) error = %v; want errors.Is %v", tt.name, err, tt.target)
			}
		})
	}
}

func TestScoreCancelled(t *testing.T) {
	r := newRouter(t, newTestModels().all, baseConfig())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Score(ctx, router.ScoreRequest{UserID: "u1", ItemIDs: []string{"i1"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Score(cancelled ctx) error = %v; want context.Canceled", err)
	}
}

func TestFieldError(t *testing.T) {
	cause := fmt.Errorf("model %q: %w", "x", models.ErrNotFound)
	err := error(&models.FieldError{Field: "model", Err: cause})
	if got, want := err.Error(), `model: model "x": not found`; got != want {
		t.Errorf("FieldError.Error() = %q; want %q", got, want)
	}
	if !errors.Is(err, models.ErrNotFound) {
		t.Errorf("errors.Is(FieldError wrapping ErrNotFound, ErrNotFound) = false; want true")
	}
	if got := errors.Unwrap(err); got != cause {
		t.Errorf("errors.Unwrap(FieldError) = %v; want %v", got, cause)
	}
}

// greedyRec ignores q.K and q.Allow's count limit: it returns every allowed
// item it knows, as a misbehaving model might.
type greedyRec struct{ items []models.Scored }

func (g *greedyRec) Close() error { return nil }

func (g *greedyRec) Recommend(_ context.Context, q models.Query) ([]models.Scored, error) {
	var out []models.Scored
	for _, s := range g.items {
		if q.Allowed(s.ItemID) {
			out = append(out, s)
		}
	}
	return out, nil
}

func TestRecommendBackfillNeverExceedsK(t *testing.T) {
	tm := newTestModels()
	rev := allItems()
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i].ItemID, rev[j].ItemID = rev[j].ItemID, rev[i].ItemID
	}
	tm.all.add("pop", "popularity", &greedyRec{items: rev})
	r := newRouter(t, tm.all, baseConfig())
	for _, k := range []int{1, 4, 5, 10} {
		req := router.Request{UserID: "u2", K: k, Route: "short"}
		resp, err := r.Recommend(t.Context(), req)
		if err != nil {
			t.Fatalf("Recommend(%+v) error = %v", req, err)
		}
		if got := len(resp.Items); got != k {
			t.Errorf("len(Recommend(k=%d, greedy fallback).Items) = %d (%v); want %d", k, got, ids(resp.Items), k)
		}
	}
}

// TestEveryLeaseReleased runs requests down every path that acquires a model
// (sources, failing and missing sources, fallbacks, backfill, rerank, a
// model override, a model without the role, Score, SimilarItems,
// TargetAudience, bad requests) and wants every lease released.
func TestEveryLeaseReleased(t *testing.T) {
	tm := newTestModels()
	tm.all.add("similar", "itemknn", fakeSimilar{})
	ms := &countingModels{fakeModels: tm.all}
	cfg := baseConfig()
	cfg.Routes = append(cfg.Routes,
		router.Route{Name: "rerank", Sources: []router.Source{{Model: "main"}}, Rerank: &router.Rerank{Model: "scorer", TopN: 4}},
		router.Route{Name: "badrerank", Sources: []router.Source{{Model: "main"}}, Rerank: &router.Rerank{Model: "main"}},
	)
	cfg.DefaultSimilar = "similar"
	r, err := router.New(router.Options{Models: ms, Store: testStore(), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, req := range []router.Request{
		{UserID: "u1"}, {UserID: "u1", Route: "blend"}, {UserID: "u1", Route: "flaky"}, {UserID: "u1", Route: "dead"},
		{UserID: "u1", Route: "short"}, {UserID: "stranger", Route: "ownfb"}, {UserID: "u1", Route: "rerank"},
		{UserID: "u1", Route: "badrerank"}, {UserID: "u1", Model: "main"}, {UserID: "u1", Model: "plain"},
		{UserID: "u1", Model: "broken"}, {UserID: "u1", Model: "missing"}, {UserID: "u1", Model: "notready"},
	} {
		r.Recommend(ctx, req)
	}
	for _, req := range []router.ScoreRequest{
		{UserID: "u1", ItemIDs: []string{"i1"}}, {UserID: "u1", ItemIDs: []string{"i1"}, Model: "plain"},
		{UserID: "u1", ItemIDs: []string{"i1"}, Model: "missing"},
	} {
		r.Score(ctx, req)
	}
	r.SimilarItems(ctx, router.SimilarRequest{ItemID: "i1"})
	r.SimilarItems(ctx, router.SimilarRequest{ItemID: "i1", Model: "main"})
	r.TargetAudience(ctx, router.AudienceRequest{ItemID: "i1"})
	r.TargetAudience(ctx, router.AudienceRequest{ItemID: "i1", Model: "main"})
	if n := ms.held.Load(); n != 0 {
		t.Errorf("%d leases not released", n)
	}
}
