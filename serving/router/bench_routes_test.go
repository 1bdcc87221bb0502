package router_test

import (
	"context"
	"slices"
	"testing"

	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/training/datagen"
)

// BenchmarkRoutes measures what routes.yaml costs a request besides its
// models, on the demo data with the popularity models: a plain route, a
// route with category and price filters and a fallback chain, and a request
// resolved through rules to an experiment's arm.
func BenchmarkRoutes(b *testing.B) {
	d, err := datagen.Generate(datagen.Config{})
	if err != nil {
		b.Fatal(err)
	}
	var cats []string
	for _, it := range d.Items {
		if !slices.Contains(cats, it.Category) {
			cats = append(cats, it.Category)
		}
	}
	slices.Sort(cats)
	lo, hi := 5.0, 500.0
	cfg := router.Config{
		DefaultRoute: "plain",
		Fallback:     "popularity",
		Rules: []router.Rule{
			{Context: map[string]string{"page": "cart"}, Route: "filtered"},
			{User: router.UserAnonymous, Route: "plain"},
			{Experiment: "exp"},
		},
		Experiments: []router.Experiment{{Name: "exp", Arms: []router.Arm{
			{Name: "control", Route: "plain", Percent: 50}, {Name: "filtered", Route: "filtered", Percent: 50},
		}}},
		Routes: []router.Route{
			{Name: "plain", Sources: []router.Source{{Model: "trending"}}},
			{Name: "filtered", Sources: []router.Source{{Model: "trending"}}, Fallback: router.Chain{"trending"},
				Filters: router.RouteFilters{ExcludeCategories: cats[:3], IncludeCategories: cats[3:12], PriceMin: &lo, PriceMax: &hi}},
		},
	}
	r, err := router.New(router.Options{Models: popularityModels(b, d), Store: store.New(d), Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	users := benchUsers(d)
	for _, bm := range []struct{ name, route string }{
		{"route=plain", "plain"}, {"route=filtered", "filtered"}, {"rules=experiment", ""},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			i := 0
			for b.Loop() {
				if _, err := r.Recommend(ctx, router.Request{UserID: users[i%len(users)], K: 10, Route: bm.route}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
