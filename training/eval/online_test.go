package eval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/experiment"
	"github.com/recserve/recserve/serving/impressionlog"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/eval"
	"github.com/recserve/recserve/training/split"
	"github.com/recserve/recserve/training/trainer"
)

// logT0 is when the logged answers start.
var logT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// writeLog writes an impression log through impressionlog.File: 40 users
// in experiment homepage (even users in arm control, route pop; odd in arm
// treatment, route main), 10 users no experiment routed (route main), and
// 5 SimilarItems answers. Control users u0, u4, u8, … click (1 in 2 of
// the control), treatment users all click and every third buys; unrouted
// users u40, u42, … click. It returns the log's path.
func writeLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "impressions.jsonl")
	l, err := impressionlog.Open(impressionlog.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	answer := func(n int, user, route, arm, kind string) router.Impression {
		imp := router.Impression{
			ID: fmt.Sprintf("r%03d", n), Time: logT0.Add(time.Duration(n) * time.Minute), Kind: kind, UserID: user,
			Route: route, Arm: arm, Models: []router.ModelVersion{{Name: "itemknn", Version: "1"}},
			Items: []router.ImpressedItem{{ItemID: "i1", Position: 1, Score: 1}, {ItemID: "i2", Position: 2, Score: 0.5}},
		}
		l.Log(imp)
		return imp
	}
	click := func(imp router.Impression, purchase bool) {
		o := store.Outcome{ImpressionID: imp.ID, UserID: imp.UserID, ItemID: "i1", Type: "view", Position: 1, Time: imp.Time.Add(time.Minute), ByID: true}
		if purchase {
			o.Type, o.Purchase, o.Revenue = "purchase", true, 10
		}
		l.LogOutcome(o)
	}
	n := 0
	for u := range 50 {
		user := fmt.Sprintf("u%d", u)
		route, arm := "main", ""
		switch {
		case u < 40 && u%2 == 0:
			route, arm = "pop", "homepage/control"
		case u < 40:
			arm = "homepage/treatment"
		}
		imp := answer(n, user, route, arm, "recommend")
		n++
		switch {
		case arm == "homepage/control" && u%4 == 0, arm == "" && u%2 == 0:
			click(imp, false)
		case arm == "homepage/treatment":
			click(imp, u%3 == 0)
		}
		if u < 5 {
			answer(n, user, "", "", "similar")
			n++
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReplayLog reports a log without offline evaluation: the experiment's
// arms as experiment.Build reports them from the log, then the routes of
// the answers no experiment routed.
func TestReplayLog(t *testing.T) {
	path := writeLog(t)
	now := logT0.Add(24 * time.Hour)
	rep, err := eval.Replay(context.Background(), []string{path}, eval.OnlineOptions{Now: now, MinUsers: 10})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Log == nil || rep.Log.Impressions != 55 || rep.Log.Outcomes != 35 || rep.K != 0 || rep.Skipped != nil {
		t.Fatalf("report log %+v, k %d, skipped %v; want 55 impressions, 35 outcomes, no offline part", rep.Log, rep.K, rep.Skipped)
	}
	type row struct {
		arm, route           string
		users, answers       int64
		clickers, buyers     int64
		control, withVerdict bool
	}
	var got []row
	for _, tb := range rep.Tables {
		for _, r := range tb.Rows {
			if r.Offline != nil {
				t.Errorf("row %+v has an offline result without --repo", r)
			}
			got = append(got, row{
				tb.Experiment + "/" + r.Arm, r.Route, r.Users, r.Answers,
				int64(math.Round(r.CTR.Value * float64(r.Users))), int64(math.Round(r.Conversion.Value * float64(r.Users))),
				r.Control, r.Verdict != "",
			})
		}
	}
	want := []row{
		{"homepage/control", "pop", 20, 20, 10, 0, true, true},
		{"homepage/treatment", "main", 20, 20, 20, 7, false, true},
		{"/", "main", 10, 10, 5, 0, false, false},
		{"/", eval.RouteSimilar, 5, 5, 0, 0, false, false},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows (experiment/arm, route, users, answers, clickers, buyers, control, verdict) =\n%v\nwant\n%v", got, want)
	}

	// The experiment's numbers are experiment.Build's on the log: what a
	// live report of the same answers and events says.
	log, err := impressionlog.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	er, err := experiment.Build(context.Background(), log, experiment.Query{Experiment: "homepage", MinUsers: 10}, now)
	if err != nil {
		t.Fatal(err)
	}
	tb := rep.Tables[0]
	if tb.Experiment != "homepage" || tb.Control != er.Control || tb.Answers != er.Impressions || len(tb.Rows) != len(er.Rows) {
		t.Fatalf("table %+v; want experiment.Build's %+v", tb, er)
	}
	for i, r := range er.Rows {
		g := tb.Rows[i]
		if g.CTR.Value != r.CTR.Value || g.CTR.Low != r.CTR.CI.Lo || g.CTR.High != r.CTR.CI.Hi || g.Conversion.Value != r.Conversion.Value ||
			g.Revenue != r.Revenue || g.Verdict != r.VerdictText(&er) {
			t.Errorf("arm %s = %+v; want experiment.Build's %+v (verdict %q)", r.Name, g, r, r.VerdictText(&er))
		}
	}

	// The report reads back from its JSON.
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("json.Marshal(report): %v", err)
	}
	var back eval.OnlineReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Tables) != 2 || back.Tables[0].Rows[1].CTR.Value != rep.Tables[0].Rows[1].CTR.Value || back.Log.Files[0] != path {
		t.Errorf("JSON %s read back as %+v", b, back)
	}
}

func TestReplayErrors(t *testing.T) {
	path := writeLog(t)
	tests := []struct {
		name string
		o    eval.OnlineOptions
		want string
	}{
		{"since after until", eval.OnlineOptions{Since: logT0.Add(time.Hour), Until: logT0}, "is not before until"},
		{"unknown metric", eval.OnlineOptions{Metric: "clicks"}, `metric "clicks"`},
		{"offline without data", eval.OnlineOptions{Offline: eval.Options{Repo: filepath.Join(t.TempDir(), "none")}}, "train: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := eval.Replay(context.Background(), []string{path}, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Replay(%+v) error = %v; want one containing %q", tt.o, err, tt.want)
			}
		})
	}
}

// TestReplayBesideOffline replays the log beside the offline evaluation of
// a repository whose routes.yaml has routes main and pop (and lists the
// experiment's arms treatment first, which makes it the control): each
// row's offline result is its route's, the very numbers Run gives, and the
// routes it cannot evaluate are said. A second log (another replica's) is
// read with the first.
func TestReplayBesideOffline(t *testing.T) {
	dir := t.TempDir()
	d, err := datagen.Generate(datagen.Config{Users: 150, Items: 80, Seed: 5})
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
	routes := `default_route: main
fallback: popularity
routes:
  - name: main
    sources: [{model: itemknn}, {model: popularity, weight: 0.3}]
  - name: pop
    sources: [{model: popularity}]
experiments:
  - name: homepage
    arms:
      - {name: treatment, route: main, percent: 50}
      - {name: control, route: pop, percent: 50}
`
	if err := os.WriteFile(filepath.Join(repo, router.ConfigFile), []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second replica's log, with an answer of a route since removed.
	legacy := filepath.Join(t.TempDir(), "impressions.jsonl")
	l, err := impressionlog.Open(impressionlog.Options{Path: legacy})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(router.Impression{ID: "old", Time: logT0, Kind: "recommend", UserID: "u99", Route: "legacy", Items: []router.ImpressedItem{{ItemID: "i1", Position: 1}}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	offline := eval.Options{Repo: repo, Train: train, Test: test, K: 5, Workers: 2}
	rep, err := eval.Replay(context.Background(), []string{writeLog(t), legacy}, eval.OnlineOptions{Now: logT0.Add(24 * time.Hour), Offline: offline})
	if err != nil {
		t.Fatal(err)
	}
	runOpts := offline
	runOpts.Routes = true
	want, err := eval.Run(context.Background(), runOpts)
	if err != nil {
		t.Fatal(err)
	}
	byRoute := map[string]eval.Result{}
	for _, r := range want.Results {
		if r.Route != "" {
			byRoute[r.Route] = r
		}
	}
	if rep.K != 5 || rep.Tables[0].Control != "treatment" {
		t.Errorf("k %d, control %q; want 5 and treatment (the first arm of routes.yaml)", rep.K, rep.Tables[0].Control)
	}
	var arms []string
	for _, tb := range rep.Tables {
		for _, r := range tb.Rows {
			arms = append(arms, r.Arm+"@"+r.Route)
			w, ok := byRoute[r.Route]
			switch {
			case !ok && r.Offline != nil:
				t.Errorf("row %s@%s has offline %+v; want none (no such route)", r.Arm, r.Route, *r.Offline)
			case ok && (r.Offline == nil || *r.Offline != w):
				t.Errorf("row %s@%s offline %+v; want Run's %+v", r.Arm, r.Route, r.Offline, w)
			case ok && w.Users == 0:
				t.Errorf("route %s evaluated on no users", r.Route)
			}
		}
	}
	if want := []string{"treatment@main", "control@pop", "@legacy", "@main", "@similar"}; !slices.Equal(arms, want) {
		t.Errorf("rows %v; want %v", arms, want)
	}
	_, similar := rep.Skipped["route similar"]
	if why := rep.Skipped["route legacy"]; !similar || !strings.Contains(why, "routes.yaml") || len(rep.Skipped) != 2 {
		t.Errorf("skipped %v; want the SimilarItems answers and route legacy (not in routes.yaml) noted", rep.Skipped)
	}
}

func TestEstimateJSON(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		e    eval.Estimate
		want string
	}{
		{eval.Estimate{Value: 0.25, Low: 0.1, High: 0.5}, `{"value":0.25,"ci_low":0.1,"ci_high":0.5}`},
		{eval.Estimate{Value: 3, Low: nan, High: nan}, `{"value":3,"ci_low":null,"ci_high":null}`}, // a mean over one user
		{eval.Estimate{Value: nan, Low: -inf, High: inf}, `{"value":null,"ci_low":null,"ci_high":null}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.e)
		if err != nil || string(b) != tt.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", tt.e, b, err, tt.want)
			continue
		}
		var back eval.Estimate
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		same := func(a, b float64) bool { return a == b || math.IsNaN(a) && (math.IsNaN(b) || math.IsInf(b, 0)) }
		if !same(back.Value, tt.e.Value) || !same(back.Low, tt.e.Low) || !same(back.High, tt.e.High) {
			t.Errorf("%s read back as %+v; want %+v (null as NaN)", b, back, tt.e)
		}
	}
}
