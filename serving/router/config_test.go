package router_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/recserve/recserve/serving/router"
)

func TestLoadConfigGood(t *testing.T) {
	tests := []struct {
		file string
		want router.Config
	}{
		{
			file: "full.yaml",
			want: router.Config{
				DefaultRoute:   "main",
				DefaultScorer:  "gbm",
				Fallback:       "pop",
				DefaultSimilar: "content",
				NewUserEvents:  3,
				Rules: []router.Rule{
					{Context: map[string]string{"page": "home"}, User: router.UserAnonymous, Route: "cold"},
					{User: router.UserKnown, Experiment: "ranker"},
				},
				Experiments: []router.Experiment{{Name: "ranker", Salt: "2026-11", Arms: []router.Arm{
					{Name: "control", Route: "main", Percent: 70}, {Name: "treatment", Route: "cold", Percent: 30},
				}}},
				Routes: []router.Route{
					{
						Name: "main", Blend: router.BlendRRF, RRFK: 30,
						Sources: []router.Source{
							{Model: "itemknn", Weight: 2, Candidates: 50, TimeoutMS: 20},
							{Model: "pop", Weight: 1},
						},
						Rerank: &router.Rerank{Model: "gbm", TopN: 20, Weight: 0.5},
						Filters: router.RouteFilters{
							Exclude: router.ExcludePurchased, IncludeOutOfStock: true, PriceMin: ptr(5), PriceMax: ptr(50),
							ExcludeCategories: []string{"gifts"}, IncludeCategories: []string{"shoes", "hats"},
						},
						Diversity: &router.Diversity{MaxPerCategory: 3, MMRLambda: 0.7},
					},
					{Name: "cold", Blend: router.BlendMinMax, RRFK: 60, Fallback: router.Chain{"trending", "pop"},
						Filters: router.RouteFilters{Exclude: router.ExcludeSeen},
						Sources: []router.Source{{Model: "trending", Weight: 1}}},
				},
			},
		},
		{
			file: "minimal.yaml",
			want: router.Config{
				DefaultRoute:   "only",
				DefaultScorer:  router.DefaultFallback,
				Fallback:       router.DefaultFallback,
				DefaultSimilar: router.DefaultSimilarModel,
				NewUserEvents:  5,
				Routes: []router.Route{{Name: "only", Blend: router.BlendMinMax, RRFK: 60,
					Filters: router.RouteFilters{Exclude: router.ExcludeSeen},
					Sources: []router.Source{{Model: "knn", Weight: 1}}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "good", tt.file)
			got, err := router.LoadConfig(path)
			if err != nil {
				t.Fatalf("LoadConfig(%s) error = %v; want nil", path, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LoadConfig(%s) = %+v; want %+v", path, got, tt.want)
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }

func TestLoadConfigBad(t *testing.T) {
	tests := []struct {
		file string
		want string // substring of the error
	}{
		{"unknown_key.yaml", "field fallbak not found"},
		{"unknown_source_key.yaml", "field wieght not found"},
		{"no_routes.yaml", "routes: at least one route is required"},
		{"empty_name.yaml", "routes[1].name: required"},
		{"duplicate_name.yaml", `routes[1].name: duplicate route "main"`},
		{"no_sources.yaml", "routes[0].sources: route \"main\" needs at least one source"},
		{"empty_model.yaml", "routes[0].sources[1].model: required"},
		{"negative_weight.yaml", "routes[0].sources[0]: weight"},
		{"nan_weight.yaml", "routes[0].sources[0]: weight"},
		{"inf_weight.yaml", "routes[0].sources[0]: weight"},
		{"negative_candidates.yaml", "routes[0].sources[0]: weight, candidates and timeout_ms must be non-negative"},
		{"bad_blend.yaml", `routes[0].blend: "mean" is not minmax, rank or rrf`},
		{"percents.yaml", `experiments[0].arms: percents of "e" sum to 90, want 100`},
		{"rule_both.yaml", "rules[0]: exactly one of route and experiment is required"},
		{"rule_route.yaml", `rules[0].route: no route named "nope"`},
		{"rule_user.yaml", `rules[0].user: "robot" is not anonymous, new or known`},
		{"arm_route.yaml", `experiments[0].arms[0].route: no route named "nope"`},
		{"rerank_weight.yaml", "routes[0].rerank: top_n must be positive and weight in (0, 1]"},
		{"prices.yaml", "routes[0].filters: price_min 10 above price_max 5"},
		{"exclude.yaml", `routes[0].filters.exclude: "viewed" is not seen, purchased or none`},
		{"lambda.yaml", "routes[0].diversity: max_per_category must be non-negative and mmr_lambda in [0, 1)"},
		{"unknown_default_route.yaml", `default_route: no route named "nope"`},
		{"syntax.yaml", "yaml:"},
		{"wrong_type.yaml", "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			got, err := router.LoadConfig(path)
			if err == nil {
				t.Fatalf("LoadConfig(%s) = %+v, nil; want error containing %q", path, got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadConfig(%s) error = %q; want it to contain %q", path, err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("LoadConfig(%s) error = %q; want it to name the file", path, err)
			}
		})
	}
}

func TestLoadConfigMissingIsDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), router.ConfigFile)
	got, err := router.LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig(missing) error = %v; want nil", err)
	}
	if want := router.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadConfig(missing) = %+v; want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v; want nil", err)
	}
}

func TestLoadConfigUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory cannot be read as a file
	if _, err := router.LoadConfig(dir); err == nil {
		t.Errorf("LoadConfig(%s) error = nil; want an error", dir)
	}
}

func TestConfigValidateZero(t *testing.T) {
	var c router.Config
	if err := c.Validate(); err == nil {
		t.Errorf("Config{}.Validate() = nil; want an error")
	}
}

func TestSetConfig(t *testing.T) {
	ms := fakeModels{}
	ms.add("main", "fake", &fakeRec{items: allItems()})
	ms.add("other", "fake", &fakeRec{items: ranked("i7")})
	r := newRouter(t, ms, baseConfig())

	bad := router.Config{Routes: []router.Route{{Name: "x"}}}
	if err := r.SetConfig(bad); err == nil {
		t.Fatalf("SetConfig(route without sources) = nil; want an error")
	}
	if got := r.Config().DefaultRoute; got != "main" {
		t.Errorf("after rejected SetConfig, Config().DefaultRoute = %q; want %q", got, "main")
	}

	good := router.Config{Fallback: "other", Routes: []router.Route{{Name: "next", Sources: []router.Source{{Model: "other"}}}}}
	if err := r.SetConfig(good); err != nil {
		t.Fatalf("SetConfig(good) = %v; want nil", err)
	}
	resp, err := r.Recommend(t.Context(), router.Request{UserID: "u1", K: 1})
	if err != nil {
		t.Fatalf("Recommend after SetConfig: %v", err)
	}
	if resp.Route != "next" || len(resp.Items) != 1 || resp.Items[0].ItemID != "i7" {
		t.Errorf("Recommend after SetConfig = route %q items %v; want route next items [i7]", resp.Route, ids(resp.Items))
	}
}
