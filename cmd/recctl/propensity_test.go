package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/recserve/recserve/models/features"
	"github.com/recserve/recserve/training/eval"
)

const python = "/usr/bin/python3"

// TestPropensityPipeline runs the documented purchase-propensity workflow
// end to end with the real trainers: datagen → split → recctl features →
// train_gbm.py and train_linear.py (XGBoost, scikit-learn) → recctl eval,
// which scores every pair through the router with the Go-native models and
// the Go feature pipeline. The gradient-boosted model must reach AUC 0.75
// and beat the linear one.
func TestPropensityPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("trains Python models")
	}
	if err := exec.Command(python, "-c", "import xgboost, sklearn, pandas, yaml").Run(); err != nil {
		t.Skipf("%s lacks xgboost/sklearn/pandas/yaml (make pydeps): %v", python, err)
	}
	dir := t.TempDir()
	data, split, repo := filepath.Join(dir, "data"), filepath.Join(dir, "split"), filepath.Join(dir, "repo")
	train, test := filepath.Join(split, "train"), filepath.Join(split, "test")
	csvPath := filepath.Join(dir, "features.csv")
	for _, args := range [][]string{
		{"datagen", "--out", data, "--users", "1500", "--items", "600", "--seed", "3"},
		{"split", "--in", data, "--out", split, "--method", "time", "--test-frac", "0.2"},
		{"features", "--data", train, "--out", csvPath},
	} {
		if _, err := run(t, args...); err != nil {
			t.Fatalf("recctl %s: %v", strings.Join(args, " "), err)
		}
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	header, err := csv.NewReader(f).Read()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]string{"user_id", "item_id", "cut", "label"}, features.Names()...); !slices.Equal(header, want) {
		t.Fatalf("features header = %v; want %v", header, want)
	}
	for _, tr := range []struct{ script, name string }{
		{"train_gbm.py", "gbm"}, {"train_linear.py", "lr"},
	} {
		cmd := exec.Command(python, filepath.Join("..", "..", "training", "python", tr.script),
			"--features", csvPath, "--out", filepath.Join(repo, tr.name, "1"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tr.script, err, out)
		}
		if !strings.Contains(string(out), "valid auc=") {
			t.Errorf("%s printed no validation AUC:\n%s", tr.script, out)
		}
	}
	routes := "default_route: main\nfallback: gbm\ndefault_scorer: gbm\nroutes:\n  - name: main\n    sources:\n      - model: gbm\n"
	if err := os.WriteFile(filepath.Join(repo, "routes.yaml"), []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "eval", "--repo", repo, "--train", train, "--test", test, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep eval.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	got := map[string]eval.ScorerResult{}
	for _, s := range rep.Scorers {
		got[s.Model] = s
	}
	gbm, lr := got["gbm"], got["lr"]
	t.Logf("AUC gbm %.4f lr %.4f over %d pairs (%d purchases)", gbm.AUC, lr.AUC, gbm.Examples, gbm.Positives)
	if gbm.Examples == 0 || gbm.Positives == 0 || gbm.LogLoss == nil || lr.LogLoss == nil {
		t.Fatalf("scorer results %+v; want both models with examples, positives and log loss", rep.Scorers)
	}
	if gbm.AUC < 0.75 {
		t.Errorf("gbm AUC = %.4f; want ≥ 0.75", gbm.AUC)
	}
	if gbm.AUC < lr.AUC {
		t.Errorf("gbm AUC %.4f < linear %.4f", gbm.AUC, lr.AUC)
	}
}

func TestFeaturesCommand(t *testing.T) {
	out, err := run(t, "features", "--list")
	if err != nil || strings.Fields(out)[0] != features.Names()[0] || len(strings.Fields(out)) != len(features.Names()) {
		t.Errorf("features --list = %q, %v; want the %d feature names", out, err, len(features.Names()))
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if _, err := run(t, "datagen", "--out", data, "--users", "200", "--items", "100", "--seed", "2"); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "f.csv")
	for _, bad := range [][]string{
		{"features", "--data", data},
		{"features", "--data", data, "--out", dst, "--window-days", "0"},
		{"features", "--data", data, "--out", dst, "--hard-frac", "2"},
	} {
		if _, err := run(t, bad...); exitCode(err) != 2 {
			t.Errorf("recctl %s: err = %v; want a usage error", strings.Join(bad, " "), err)
		}
	}
	if _, err := run(t, "features", "--data", filepath.Join(dir, "nope"), "--out", dst); err == nil {
		t.Errorf("features on a missing data set: err = nil")
	}
	out, err = run(t, "features", "--data", data, "--out", dst, "--cuts", "2", "--neg-users", "0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "over 2 cuts") {
		t.Errorf("features output %q; want it to report 2 cuts", out)
	}
	if _, err := os.Stat(dst); err != nil {
		t.Errorf("no output file: %v", err)
	}
}
