package serving

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// TestCanaryThroughRouter serves a popularity model whose version 2 is a 30%
// canary from a real repository, lent to the router through repoModels: each
// user sticks to one version, about 30% of users get the canary, responses
// name the version that answered and mark the canary, and the per-version
// metrics count the calls apart.
func TestCanaryThroughRouter(t *testing.T) {
	repo := t.TempDir()
	for v, best := range map[string]int{"1": 1, "2": 20} {
		var entries []popularity.Entry
		for n := 1; n <= 20; n++ {
			entries = append(entries, popularity.Entry{ItemID: fmt.Sprintf("i%d", n), Score: 100 - math.Abs(float64(n-best))})
		}
		writePopularity(t, filepath.Join(repo, "pop", v), entries)
	}
	policy := "version_policy: specific\nstable: \"1\"\ncanary: \"2\"\ncanary_percent: 30\n"
	if err := os.WriteFile(filepath.Join(repo, "pop", repository.PolicyFile), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	ks := models.NewRegistry()
	if err := ks.Register(popularity.Kind, popularity.Build); err != nil {
		t.Fatal(err)
	}
	rp, err := repository.Open(t.Context(), repository.Options{Dir: repo, Registry: ks})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	cfg := router.DefaultConfig()
	cfg.Fallback = "pop"
	reg := prometheus.NewRegistry()
	r, err := router.New(router.Options{Models: repoModels{rp}, Store: store.New(&dataset.Dataset{}), Config: cfg, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}

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
			if canary := resp.Models[0].Canary; canary != (v == "2") {
				t.Fatalf("Recommend(%s) version %s marked canary=%v; want %v", user, v, canary, v == "2")
			}
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
	// Each version's calls are counted apart, so a canary can be compared
	// with its stable version.
	want := fmt.Sprintf(`
# HELP recserve_model_calls_total Calls of a model version by the router (route sources, reranks, Score).
# TYPE recserve_model_calls_total counter
recserve_model_calls_total{model="pop",version="1"} %d
recserve_model_calls_total{model="pop",version="2"} %d
`, perVersion["1"], perVersion["2"])
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "recserve_model_calls_total"); err != nil {
		t.Errorf("per-version calls: %v", err)
	}
}

// TestRepoModelsLease: a lease reports the version and kind the repository
// serves, holds the version until released (an unload meanwhile closes it
// only at the Release), costs no allocation beyond the repository's own, and
// an unknown model is an error with no lease.
func TestRepoModelsLease(t *testing.T) {
	repo := t.TempDir()
	writePopularity(t, filepath.Join(repo, "pop", "1"), []popularity.Entry{{ItemID: "i1", Score: 1}})
	ks := models.NewRegistry()
	if err := ks.Register(popularity.Kind, popularity.Build); err != nil {
		t.Fatal(err)
	}
	rp, err := repository.Open(t.Context(), repository.Options{Dir: repo, Registry: ks})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	ms := repoModels{rp}

	if l, err := ms.Acquire("nope", "u:1"); err == nil || l != nil {
		t.Errorf("Acquire(nope) = %v, %v; want no lease and an error", l, err)
	}
	l, err := ms.Acquire("pop", "u:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Model().(models.Recommender); !ok || l.Version() != "1" || l.Kind() != popularity.Kind {
		t.Errorf("lease = model %T, version %q, kind %q; want a recommender, 1, %s", l.Model(), l.Version(), l.Kind(), popularity.Kind)
	}
	held, err := rp.Get("pop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Unload(t.Context(), "pop"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Closed():
		t.Fatal("version closed while a lease holds it")
	default:
	}
	l.Release()
	<-held.Closed()

	if _, err := rp.Activate(t.Context(), "pop", "1", 0); err != nil {
		t.Fatal(err)
	}
	direct := testing.AllocsPerRun(100, func() {
		l, _ := rp.Acquire("pop", "u:1")
		l.Release()
	})
	leased := testing.AllocsPerRun(100, func() {
		l, _ := ms.Acquire("pop", "u:1")
		l.Release()
	})
	if leased != direct {
		t.Errorf("Acquire and Release through repoModels: %v allocations; want the repository's %v", leased, direct)
	}
}

// writePopularity writes a popularity model version of entries into dir.
func writePopularity(t *testing.T, dir string, entries []popularity.Entry) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := popularity.New(entries, popularity.Global)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, popularity.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.Save(f); err != nil {
		t.Fatal(err)
	}
	if err := models.WriteSpec(dir, models.Spec{Kind: popularity.Kind}); err != nil {
		t.Fatal(err)
	}
}
