package router_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/server/router"
	"github.com/recserve/recserve/store"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/trainer"
)

// staticModels serves fixed loaded models by name.
type staticModels map[string]*repository.Loaded

func (s staticModels) Get(name string) (*repository.Loaded, error) {
	if l, ok := s[name]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("model %q: %w", name, models.ErrNotFound)
}

// BenchmarkRecommend measures Router.Recommend in process on the demo data
// set, for the popularity model globally and by category.
func BenchmarkRecommend(b *testing.B) {
	d, err := datagen.Generate(datagen.Config{})
	if err != nil {
		b.Fatal(err)
	}
	st := store.New(d)
	ms := staticModels{}
	for name, scope := range map[string]popularity.Scope{"popularity": popularity.Global, "trending": popularity.Category} {
		m, err := trainer.FitPopularity(d, trainer.PopularityOptions{Scope: scope})
		if err != nil {
			b.Fatal(err)
		}
		ms[name] = &repository.Loaded{Name: name, Version: "1", Model: m}
	}
	users := make([]string, 0, 1000)
	for _, in := range d.Interactions {
		if len(users) == cap(users) {
			break
		}
		users = append(users, in.UserID)
	}
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
