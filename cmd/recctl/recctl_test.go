package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/training/eval"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runCommand(context.Background(), args, &out, &errOut)
	if err != nil {
		t.Logf("recctl %s: stderr: %s", strings.Join(args, " "), errOut.String())
	}
	return out.String(), err
}

// TestOfflinePipeline runs the documented offline workflow end to end:
// datagen → split → train → eval (table and JSON).
func TestOfflinePipeline(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	split := filepath.Join(dir, "split")
	repo := filepath.Join(dir, "repo")
	steps := [][]string{
		{"datagen", "--out", data, "--users", "300", "--items", "200", "--seed", "7"},
		{"split", "--in", data, "--out", split, "--method", "time", "--test-frac", "0.2"},
		{"train", "popularity", "--data", filepath.Join(split, "train"), "--out", filepath.Join(repo, "popularity", "1")},
		{"train", "popularity", "--data", filepath.Join(split, "train"), "--out", filepath.Join(repo, "bycat", "1"),
			"--param", "scope=category", "--param", "half_life_days=14"},
	}
	for _, args := range steps {
		if _, err := run(t, args...); err != nil {
			t.Fatalf("recctl %s: %v", strings.Join(args, " "), err)
		}
	}
	d, err := dataset.Read(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Items) != 200 || len(d.Interactions) == 0 {
		t.Fatalf("datagen wrote %d items, %d interactions; want 200 items and some interactions", len(d.Items), len(d.Interactions))
	}
	for _, part := range []string{"train", "test"} {
		if _, err := os.Stat(filepath.Join(split, part, dataset.InteractionsFile)); err != nil {
			t.Errorf("split did not write %s: %v", part, err)
		}
	}

	out, err := run(t, "eval", "--repo", repo, "--train", filepath.Join(split, "train"), "--test", filepath.Join(split, "test"), "--k", "5")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NDCG@5", "popularity", "bycat"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval table = %q; want it to contain %q", out, want)
		}
	}

	out, err = run(t, "eval", "--json", "--repo", repo, "--train", filepath.Join(split, "train"), "--test", filepath.Join(split, "test"))
	if err != nil {
		t.Fatal(err)
	}
	var rep eval.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json output %q: %v", out, err)
	}
	if rep.K != 10 || len(rep.Results) != 2 {
		t.Fatalf("eval --json = k %d, %d results; want k 10, 2 results", rep.K, len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Users == 0 || r.NDCG <= 0 || r.NDCG > 1 || r.Coverage <= 0 {
			t.Errorf("result %+v: want users > 0, 0 < ndcg <= 1, coverage > 0", r)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{
		{},
		{"nope"},
		{"datagen"},
		{"split", "--in", "x"},
		{"train"},
		{"import", "tsv", "--in", "a", "--out", "b"},
		{"eval", "--repo", "r", "--train", "a", "--test", "b", "--k", "0"},
	}
	for _, args := range tests {
		_, err := run(t, args...)
		if !errors.Is(err, errUsage) || exitCode(err) != 2 {
			t.Errorf("recctl %q = %v (exit %d); want a usage error, exit 2", args, err, exitCode(err))
		}
	}
}

func TestTrainRejectsUnknownParam(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if _, err := run(t, "datagen", "--out", data, "--users", "50", "--items", "40"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "repo", "p", "1")
	_, err := run(t, "train", "popularity", "--data", data, "--out", out, "--param", "scoep=category")
	if err == nil || !strings.Contains(err.Error(), "scoep") {
		t.Fatalf("train with a misspelt param = %v; want an error naming it", err)
	}
	if _, statErr := os.Stat(out); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("failed training left %s behind (stat: %v)", out, statErr)
	}
}
