package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/serving/impressionlog"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/training/eval"
)

// writeImpressionLog logs, through impressionlog.File, one answer to each
// of 30 users: in experiment homepage, arm a (route pop) for even users and
// arm b (route main) for odd ones, every b user and every fourth a user
// clicking; and 6 answers of route main no experiment routed. It returns
// the log's path and the answers' time.
func writeImpressionLog(t *testing.T) (string, time.Time) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "impressions.jsonl")
	l, err := impressionlog.Open(impressionlog.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour).UTC()
	for u := range 36 {
		imp := router.Impression{
			ID: fmt.Sprintf("r%d", u), Time: at, Kind: "recommend", UserID: fmt.Sprintf("u%d", u), Route: "main",
			Items: []router.ImpressedItem{{ItemID: "i1", Position: 1, Score: 1}},
		}
		switch {
		case u >= 30:
		case u%2 == 0:
			imp.Route, imp.Arm = "pop", "homepage/a"
		default:
			imp.Arm = "homepage/b"
		}
		l.Log(imp)
		if u%2 == 1 || u%4 == 0 {
			l.LogOutcome(store.Outcome{ImpressionID: imp.ID, UserID: imp.UserID, ItemID: "i1", Type: "view", Position: 1, Time: at.Add(time.Minute), ByID: true})
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, at
}

// TestEvalImpressions replays a log alone (table and JSON), then beside the
// offline evaluation of a repository with routes main and pop.
func TestEvalImpressions(t *testing.T) {
	logPath, at := writeImpressionLog(t)

	out, err := run(t, "eval", "--impressions", logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"read 36 answers and 27 attributed events from 1 file",
		"experiment homepage: 30 answers; control a",
		"arm  route  users  answers  CTR [CI]",
		"a    pop    15     15       53.33% [",
		"b    main   15     15       100.00% [",
		"answers no experiment routed: 6",
		"-    main   6      6        66.67% [",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("eval --impressions output:\n%s\nwant it to contain %q", out, want)
		}
	}
	if strings.Contains(out, "NDCG") {
		t.Errorf("eval --impressions without --repo printed offline columns:\n%s", out)
	}

	out, err = run(t, "eval", "--impressions", logPath, "--json", "--since", at.Add(time.Second).Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	var empty eval.OnlineReport
	if err := json.Unmarshal([]byte(out), &empty); err != nil || len(empty.Tables) != 0 || empty.Log.Impressions != 36 {
		t.Errorf("eval --impressions --json --since after every answer = %s (%v); want no tables, the log's 36 answers read", out, err)
	}

	// The side-by-side: the same log beside the routes of a repository
	// trained on a generated data set.
	dir := t.TempDir()
	data, split, repo := filepath.Join(dir, "data"), filepath.Join(dir, "split"), filepath.Join(dir, "repo")
	train, test := filepath.Join(split, "train"), filepath.Join(split, "test")
	steps := [][]string{
		{"datagen", "--out", data, "--users", "150", "--items", "80", "--seed", "3"},
		{"split", "--in", data, "--out", split, "--method", "time", "--test-frac", "0.2"},
		{"train", "popularity", "--data", train, "--out", filepath.Join(repo, "popularity", "1")},
		{"train", "itemknn", "--data", train, "--out", filepath.Join(repo, "itemknn", "1")},
	}
	for _, args := range steps {
		if _, err := run(t, args...); err != nil {
			t.Fatalf("recctl %s: %v", strings.Join(args, " "), err)
		}
	}
	routes := "default_route: main\nfallback: popularity\nroutes:\n  - name: main\n    sources: [{model: itemknn}]\n  - name: pop\n    sources: [{model: popularity}]\n"
	if err := os.WriteFile(filepath.Join(repo, router.ConfigFile), []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	offline := []string{"--repo", repo, "--train", train, "--test", test, "--k", "5"}
	out, err = run(t, append([]string{"eval", "--impressions", logPath}, offline...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NDCG@5", "R@5", "HR@5", "verdict"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval --impressions with --repo:\n%s\nwant it to contain %q", out, want)
		}
	}
	out, err = run(t, append([]string{"eval", "--json", "--impressions", logPath}, offline...)...)
	if err != nil {
		t.Fatal(err)
	}
	var rep eval.OnlineReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --impressions --json: %v\n%s", err, out)
	}
	if rep.K != 5 || len(rep.Tables) != 2 {
		t.Fatalf("eval --impressions --json = k %d, %d tables; want 5 and 2:\n%s", rep.K, len(rep.Tables), out)
	}
	ndcg := map[string]float64{}
	for _, tb := range rep.Tables {
		for _, r := range tb.Rows {
			if r.Offline == nil || r.Offline.Route != r.Route || r.Offline.Users == 0 {
				t.Fatalf("row %+v: want the offline result of route %s", r, r.Route)
			}
			if prev, ok := ndcg[r.Route]; ok && prev != r.Offline.NDCG {
				t.Errorf("route %s: NDCG %g and %g in two rows; want one evaluation", r.Route, prev, r.Offline.NDCG)
			}
			ndcg[r.Route] = r.Offline.NDCG
		}
	}
	if len(ndcg) != 2 || ndcg["main"] <= 0 {
		t.Errorf("offline NDCG by route %v; want main and pop, main > 0", ndcg)
	}
}

func TestEvalImpressionsUsage(t *testing.T) {
	logPath, _ := writeImpressionLog(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--repo", "r"}, "all of --repo, --train and --test"},
		{[]string{"--routes"}, "--routes does not apply"},
		{[]string{"--models", "itemknn"}, "--models does not apply"},
		{[]string{"--since", "yesterday"}, "--since"},
		{[]string{"--until", "2026-13-01"}, "--until"},
		{[]string{"--alpha", "1.5"}, "--alpha"},
		{[]string{"--min-users", "-1"}, "--min-users"},
	}
	for _, tt := range tests {
		args := append([]string{"eval", "--impressions", logPath}, tt.args...)
		_, err := run(t, args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("recctl %q = %v; want a usage error containing %q", args, err, tt.want)
		}
	}
	if _, err := run(t, "eval", "--impressions", filepath.Join(t.TempDir(), "none.jsonl")); err == nil || !strings.Contains(err.Error(), "no log file matches") {
		t.Errorf("eval --impressions of a missing log = %v; want an error saying no file matches", err)
	}
}
