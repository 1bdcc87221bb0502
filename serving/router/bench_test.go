package router_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
	"github.com/recserve/recserve/models/userknn"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/trainer"
)

// BenchmarkRecommend measures Router.Recommend in process on the demo data
// set, for the popularity model globally and by category.
func BenchmarkRecommend(b *testing.B) {
	d, err := datagen.Generate(datagen.Config{})
	if err != nil {
		b.Fatal(err)
	}
	st := store.New(d)
	ms := popularityModels(b, d)
	users := benchUsers(d)
	for _, model := range []string{"popularity", "trending"} {
		r, err := router.New(router.Options{Models: ms, Store: st, Config: router.DefaultConfig()})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("model="+model, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			i := 0
			for b.Loop() {
				resp, err := r.Recommend(ctx, router.Request{UserID: users[i%len(users)], K: 10, Model: model})
				if err != nil || len(resp.Items) != 10 {
					b.Fatalf("Recommend = %d items, %v", len(resp.Items), err)
				}
				i++
			}
		})
	}
}

// popularityModels fits "popularity" (global) and "trending" (by category)
// on d.
func popularityModels(b *testing.B, d *dataset.Dataset) router.Models {
	ms := fakeModels{}
	for name, scope := range map[string]popularity.Scope{"popularity": popularity.Global, "trending": popularity.Category} {
		m, err := trainer.FitPopularity(d, trainer.PopularityOptions{Scope: scope})
		if err != nil {
			b.Fatal(err)
		}
		ms[name] = &fakeLease{model: m, version: "1"}
	}
	return ms
}

// benchUsers lists the users of d's first 1000 interactions (with repeats,
// as requests come).
func benchUsers(d *dataset.Dataset) []string {
	users := make([]string, 0, 1000)
	for _, in := range d.Interactions {
		if len(users) == cap(users) {
			break
		}
		users = append(users, in.UserID)
	}
	return users
}

// BenchmarkEnsemble compares a three-source route (itemknn, userknn,
// trending: the shipped default) with each source alone, in process on the
// demo data, and reports p50 and p99 latency. Sources run concurrently, so
// the ensemble's p50 should stay close to its slowest member's.
//
//	go test -run '^$' -bench Ensemble -benchtime 3000x ./serving/router/
func BenchmarkEnsemble(b *testing.B) {
	ctx := context.Background()
	d, err := datagen.Generate(datagen.Config{})
	if err != nil {
		b.Fatal(err)
	}
	st := store.New(d)
	ms := fakeModels{}
	trending, err := trainer.FitPopularity(d, trainer.PopularityOptions{Scope: popularity.Category, HalfLifeDays: 7})
	if err != nil {
		b.Fatal(err)
	}
	ik, err := trainer.FitItemKNN(ctx, d, trainer.DefaultItemKNNOptions())
	if err != nil {
		b.Fatal(err)
	}
	uk, err := trainer.FitUserKNN(ctx, d, userknn.DefaultOptions(), 0)
	if err != nil {
		b.Fatal(err)
	}
	for name, m := range map[string]models.Model{"trending": trending, "itemknn": ik, "userknn": uk, "popularity": trending} {
		ms[name] = &fakeLease{model: m, version: "1"}
	}
	cfg := router.Config{DefaultRoute: "ensemble", Fallback: "popularity", Routes: []router.Route{
		{Name: "ensemble", Sources: []router.Source{{Model: "itemknn", Weight: 1}, {Model: "userknn", Weight: 0.3}, {Model: "trending", Weight: 0.5}}},
		{Name: "itemknn", Sources: []router.Source{{Model: "itemknn"}}},
		{Name: "userknn", Sources: []router.Source{{Model: "userknn"}}},
		{Name: "trending", Sources: []router.Source{{Model: "trending"}}},
	}}
	r, err := router.New(router.Options{Models: ms, Store: st, Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	seen := map[string]bool{}
	var users []string
	for _, in := range d.Interactions {
		if !seen[in.UserID] && len(users) < 1000 {
			seen[in.UserID] = true
			users = append(users, in.UserID)
		}
	}
	// The same three models called directly, one after another and from
	// three goroutines: how much the machine lets CPU-bound sources overlap,
	// whatever the router does.
	direct := []models.Recommender{ik, uk, trending}
	for _, parallel := range []bool{false, true} {
		b.Run(fmt.Sprintf("direct/parallel=%v", parallel), func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				prof, err := st.Profile(ctx, users[i%len(users)])
				if err != nil {
					b.Fatal(err)
				}
				q := models.Query{UserID: users[i%len(users)], History: prof.History, K: 20}
				start := time.Now()
				if parallel {
					var wg sync.WaitGroup
					for _, m := range direct[1:] {
						wg.Add(1)
						go func() { defer wg.Done(); m.Recommend(ctx, q) }()
					}
					direct[0].Recommend(ctx, q)
					wg.Wait()
				} else {
					for _, m := range direct {
						m.Recommend(ctx, q)
					}
				}
				lat = append(lat, time.Since(start))
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		})
	}
	for _, route := range []string{"itemknn", "userknn", "trending", "ensemble"} {
		b.Run("route="+route, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				start := time.Now()
				resp, err := r.Recommend(ctx, router.Request{UserID: users[i%len(users)], K: 10, Route: route})
				lat = append(lat, time.Since(start))
				if err != nil || len(resp.Items) != 10 {
					b.Fatalf("Recommend(%s) = %d items, %v", route, len(resp.Items), err)
				}
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
