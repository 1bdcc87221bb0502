package main

import (
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recserve/recserve/server"
	"github.com/recserve/recserve/training/simulate"
)

// simData generates a small data set for the simulate tests; its datagen
// flags are simGen.
func simData(t *testing.T) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	if _, err := run(t, "datagen", "--out", data, "--users", "150", "--items", "100", "--seed", "4"); err != nil {
		t.Fatalf("recctl datagen: %v", err)
	}
	return data
}

var simGen = []string{"--gen-users", "150", "--gen-items", "100", "--gen-seed", "4"}

func TestSimulateFlags(t *testing.T) {
	data := simData(t)
	// A port nothing listens on: closed right after it is taken.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	lis.Close()

	tests := []struct {
		name  string
		args  []string
		usage bool   // a usage error (exit code 2)
		want  string // a substring of the error
	}{
		{"unknown flag", []string{"--bogus"}, true, "-bogus"},
		{"bad number", []string{"--k", "ten"}, true, "-k"},
		{"argument", []string{"extra"}, true, "no arguments"},
		{"k zero", []string{"--k", "0"}, true, "--k = 0"},
		{"k too large", []string{"--k", "1001"}, true, "--k = 1001"},
		{"users zero", []string{"--users", "0"}, true, "--users = 0"},
		{"requests zero", []string{"--requests", "0"}, true, "--requests = 0"},
		{"concurrency zero", []string{"--concurrency", "0"}, true, "--concurrency = 0"},
		{"batch too large", []string{"--batch", "10001"}, true, "--batch = 10001"},
		{"attraction above 1", []string{"--max-attraction", "1.5"}, true, "--max-attraction = 1.5"},
		{"attraction zero", []string{"--max-attraction", "0"}, true, "--max-attraction = 0"},
		{"context without =", []string{"--context", "page"}, true, `--context "page"`},
		{"users beyond the data set", []string{"--users", "151"}, true, "--users = 151"},
		{"bad gen flags", []string{"--gen-users", "-1"}, true, "--gen-users"},
		{"other seed", []string{"--gen-seed", "5"}, true, "--gen-seed 5"},
		{"other size", []string{"--gen-users", "5000", "--gen-items", "2000"}, true, "150 users; want 5000"},
		{"no data", []string{"--data", filepath.Join(t.TempDir(), "none")}, false, "--data"},
		{"server down", []string{"--users", "3"}, false, "cannot reach the server at " + down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"simulate", "--addr", down, "--data", data}, simGen...)
			args = append(args, tt.args...)
			_, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, errUsage) != tt.usage {
				t.Errorf("recctl %s = %v; want an error naming %q (usage error: %v)", strings.Join(args, " "), err, tt.want, tt.usage)
			}
		})
	}
}

// TestSimulate plays shoppers against a real server: every user gets its
// answers, and the events are accepted.
func TestSimulate(t *testing.T) {
	dir := t.TempDir()
	data := simData(t)
	repo := filepath.Join(dir, "repo")
	if _, err := run(t, "train", "popularity", "--data", data, "--out", filepath.Join(repo, "popularity", "1")); err != nil {
		t.Fatalf("recctl train: %v", err)
	}
	addr := startServer(t, server.Config{Repo: repo, Data: data, State: filepath.Join(dir, "state")})
	if _, err := waitModels(t, "--addr", addr); err != nil {
		t.Fatalf("server not ready: %v", err)
	}
	args := append([]string{"simulate", "--addr", addr, "--data", data, "--users", "120", "--requests", "2", "--concurrency", "3", "--json"}, simGen...)
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("recctl %s: %v", strings.Join(args, " "), err)
	}
	var res struct {
		simulate.Result
		SimSeed int64 `json:"sim_seed"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("recctl simulate --json = %q: %v", out, err)
	}
	if res.SimSeed == 0 {
		t.Errorf("recctl simulate --json sim_seed = 0; want the random seed it drew")
	}
	if res.Users != 120 || res.Requests != 240 || len(res.Arms) != 1 || res.Events == 0 || res.UnknownItems != 0 {
		t.Fatalf("recctl simulate --json = %+v; want 120 users, 240 answers, one arm, some events, no unknown items", res)
	}
	a := res.Arms[0]
	if a.Name != "" || len(a.Routes) != 1 || a.CTR <= 0 || a.CTR >= 1 || a.Shown == 0 {
		t.Errorf("arm = %+v; want the arm \"\" of one route with a CTR in (0, 1)", a)
	}

	// The table.
	args = append([]string{"simulate", "--addr", addr, "--data", data, "--users", "10"}, simGen...)
	out, err = run(t, args...)
	if err != nil {
		t.Fatalf("recctl %s: %v", strings.Join(args, " "), err)
	}
	for _, want := range []string{"simulated 10 users", "--sim-seed ", "CTR truth", "realised", "default"} {
		if !strings.Contains(out, want) {
			t.Errorf("recctl simulate = %q; want it to contain %q", out, want)
		}
	}
}
