package eval_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/eval"
	"github.com/recserve/recserve/training/split"
	"github.com/recserve/recserve/training/trainer"
)

// TestRunRoutesWithMissingModels evaluates routes whose routes.yaml names
// models the repository lacks (as `make train` leaves it when the data set
// cannot train some models): the route is still evaluated, without them, and
// the report says which were left out.
func TestRunRoutesWithMissingModels(t *testing.T) {
	dir := t.TempDir()
	d, err := datagen.Generate(datagen.Config{Users: 200, Items: 100, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	tr, te, err := split.Split(d, split.Options{TestFrac: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	train, test, repo := filepath.Join(dir, "train"), filepath.Join(dir, "test"), filepath.Join(dir, "repo")
	for p, part := range map[string]*dataset.Dataset{train: tr, test: te} {
		if err := dataset.Write(p, part); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []string{"popularity", "itemknn"} {
		if _, err := trainer.Run(context.Background(), trainer.Job{Kind: kind, DataDir: train, Out: filepath.Join(repo, kind, "1")}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name        string
		routes      string
		wantSkipped []string
	}{
		{
			name:   "every model present",
			routes: "sources: [{model: itemknn}, {model: popularity, weight: 0.3}]\n    fallback: [popularity]",
		},
		{
			name:        "a source and a fallback missing",
			routes:      "sources: [{model: itemknn}, {model: rnn, timeout_ms: 50}]\n    fallback: [trending]",
			wantSkipped: []string{"rnn (in route main)", "trending (in route main)"},
		},
		{
			name:        "every source missing",
			routes:      "sources: [{model: cnn}]",
			wantSkipped: []string{"cnn (in route main)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := "default_route: main\ndefault_scorer: propensity\nfallback: popularity\nroutes:\n  - name: main\n    " + tt.routes + "\n"
			if err := os.WriteFile(filepath.Join(repo, router.ConfigFile), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := eval.Run(context.Background(), eval.Options{Repo: repo, Train: train, Test: test, Routes: true})
			if err != nil {
				t.Fatalf("eval with routes.yaml\n%s: %v", cfg, err)
			}
			var route *eval.Result
			for i, r := range rep.Results {
				if r.Route == "main" {
					route = &rep.Results[i]
				}
			}
			if route == nil || route.Users == 0 || route.NDCG <= 0 {
				t.Fatalf("route main result %+v; want it evaluated on every test user with NDCG > 0", route)
			}
			skipped := slices.Sorted(maps.Keys(rep.Skipped))
			if !slices.Equal(skipped, tt.wantSkipped) {
				t.Errorf("skipped %v (%v); want %v", skipped, rep.Skipped, tt.wantSkipped)
			}
		})
	}
}
