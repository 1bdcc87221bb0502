package simulate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving"
	"github.com/recserve/recserve/serving/experiment"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/pebblestore"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/simulate"
	"github.com/recserve/recserve/training/trainer"
)

// inProcess plays the simulator against a serving stack directly: the
// router answers, the live store tracks (and attributes), as the server's
// RPCs would, without the transport.
type inProcess struct {
	s   *serving.Stack
	ctx map[string]string
}

func (p inProcess) Recommend(ctx context.Context, userID string, k int) (simulate.Answer, error) {
	resp, err := p.s.Router.Recommend(ctx, router.Request{UserID: userID, K: k, Context: p.ctx})
	if err != nil {
		return simulate.Answer{}, err
	}
	a := simulate.Answer{RecommendationID: resp.RecommendationID, Route: resp.Route, Arm: resp.Arm}
	for _, it := range resp.Items {
		a.Items = append(a.Items, it.ItemID)
	}
	return a, nil
}

func (p inProcess) Track(ctx context.Context, events []store.Event) error {
	now := time.Now().UTC()
	for i := range events {
		if events[i].Time.IsZero() {
			events[i].Time = now
		}
	}
	_, err := p.s.Live.Track(ctx, events)
	return err
}

// aaRoutes splits users evenly between two arms answered by the same route.
const aaRoutes = `default_route: knn
fallback: popularity
routes:
  - name: knn
    sources:
      - {model: itemknn, weight: 1}
experiments:
  - name: aa
    arms:
      - {name: a, route: knn, percent: 50}
      - {name: b, route: knn, percent: 50}
rules:
  - context: {page: home}
    experiment: aa
`

// TestAAExperiment is the in-process version of the experiment loop with two
// identical arms: 100 seeded runs, each reshuffling users between the arms
// (a new salt) and drawing new clicks, must be called "no difference" at
// least 95 times. At alpha 0.05 about 5 false winners in 100 are expected,
// so the bar is tight by design: the runs are the same on every machine
// (seeds 1-100) and the count is logged.
func TestAAExperiment(t *testing.T) {
	if testing.Short() {
		t.Skip("100 simulated experiments")
	}
	ctx := t.Context()
	dir := t.TempDir()
	gen := datagen.Config{Users: 1000, Items: 200, Seed: 5}
	d, err := datagen.Generate(gen)
	if err != nil {
		t.Fatal(err)
	}
	data, repo := filepath.Join(dir, "data"), filepath.Join(dir, "repo")
	if err := dataset.Write(data, d); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"itemknn", "popularity"} {
		if _, err := trainer.Run(ctx, trainer.Job{Kind: kind, DataDir: data, Out: filepath.Join(repo, kind, "1")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(repo, "routes.yaml"), []byte(aaRoutes), 0o644); err != nil {
		t.Fatal(err)
	}
	backend, err := pebblestore.Open(filepath.Join(dir, "state"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stack, err := serving.Open(ctx, serving.Options{Repo: repo, Data: data, Backend: backend})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	shoppers, err := datagen.NewShoppers(gen)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, u := range d.Users {
		users = append(users, u.ID)
	}

	const runs = 100
	noDifference := 0
	var falseWinners []string
	for seed := 1; seed <= runs; seed++ {
		cfg := stack.Router.Config()
		cfg.Experiments[0].Salt = fmt.Sprintf("aa-%d", seed)
		if err := stack.Router.SetConfig(cfg); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := simulate.Run(ctx, inProcess{stack, map[string]string{"page": "home"}}, simulate.Datagen(shoppers),
			simulate.Config{Users: users, Seed: int64(seed), Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := stack.Report(ctx, experiment.Query{Experiment: "aa", Since: start, MinUsers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Rows) != 2 || rep.Rows[0].Users+rep.Rows[1].Users != int64(res.Users) {
			t.Fatalf("run %d: report rows %+v for %d users", seed, rep.Rows, res.Users)
		}
		switch v := rep.Rows[1].Verdict; v {
		case experiment.NoDifference:
			noDifference++
		case experiment.Better, experiment.Worse:
			falseWinners = append(falseWinners, fmt.Sprintf("seed %d: %s (p = %.3g)", seed, v, rep.Rows[1].CTRLift.PValue))
		default:
			t.Fatalf("run %d: verdict %s", seed, v)
		}
	}
	t.Logf("A/A: %d of %d runs no difference; false winners: %v", noDifference, runs, falseWinners)
	if noDifference < 95 {
		t.Errorf("A/A called no difference in %d of %d runs; want at least 95 (false winners: %v)", noDifference, runs, falseWinners)
	}
}
