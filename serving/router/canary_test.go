package router_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving/router"
)

// TestCanaryThroughRouter serves a popularity model whose version 2 is a 30%
// canary from a real repository: each user sticks to one version, about 30%
// of users get the canary, responses name the version that answered, and
// the per-version metrics count the calls apart.
func TestCanaryThroughRouter(t *testing.T) {
	repo := t.TempDir()
	for v, best := range map[string]int{"1": 1, "2": 20} {
		dir := filepath.Join(repo, "pop", v)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var entries []popularity.Entry
		for n := 1; n <= 20; n++ {
			entries = append(entries, popularity.Entry{ItemID: fmt.Sprintf("i%d", n), Score: 100 - math.Abs(float64(n-best))})
		}
		m, err := popularity.New(entries, popularity.Global)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, popularity.DefaultFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Save(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := models.WriteSpec(dir, models.Spec{Kind: popularity.Kind}); err != nil {
			t.Fatal(err)
		}
	}
	policy := "version_policy: specific\nstable: \"1\"\ncanary: \"2\"\ncanary_percent: 30\n"
	if err := os.WriteFile(filepath.Join(repo, "pop", repository.PolicyFile), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	ks := models.NewRegistry()
	if err := ks.Register(popularity.Kind, popularity.Build); err != nil {
		t.Fatal(err)
	}
	repoModels, err := repository.Open(t.Context(), repository.Options{Dir: repo, Registry: ks})
	if err != nil {
		t.Fatal(err)
	}
	defer repoModels.Close()
	cfg := router.DefaultConfig()
	cfg.Fallback = "pop"
	r, reg := newRouterWithRegistry(t, repoModels, cfg)

	const users = 2000
	perVersion := map[string]int{}
	for i := range users {
		user := fmt.Sprintf("user%d", i)
		var first string
		for range 2 {
			resp, err := r.Recommend(t.Context(), router.Request{UserID: user, K: 3, Model: "pop"})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Models) != 1 || resp.Models[0].Name != "pop" {
				t.Fatalf("Recommend(%s).Models = %v; want pop", user, resp.Models)
			}
			v := resp.Models[0].Version
			wantTop := map[string]string{"1": "i1", "2": "i20"}[v]
			if resp.Items[0].ItemID != wantTop {
				t.Errorf("version %s answered %s first; want %s", v, resp.Items[0].ItemID, wantTop)
			}
			if first != "" && v != first {
				t.Fatalf("user %s moved from version %s to %s", user, first, v)
			}
			first = v
			perVersion[v]++
		}
	}
	if share := float64(perVersion["2"]) / (2 * users); math.Abs(share-0.3) > 0.04 {
		t.Errorf("canary share = %.3f; want 0.30 ± 0.04", share)
	}
	for v, want := range perVersion {
		for _, metric := range []string{"recserve_model_calls_total", "recserve_model_call_duration_seconds"} {
			if got := sample(t, reg, metric, "model", "pop", "version", v); got != float64(want) {
				t.Errorf("%s{model=pop,version=%s} = %v; want %d", metric, v, got, want)
			}
		}
	}
}
