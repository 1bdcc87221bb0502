package main

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/server"
)

// TestClientCommands runs recommend, similar, score and models against a real
// server on a loopback port.
func TestClientCommands(t *testing.T) {
	dir := t.TempDir()
	data, repo := filepath.Join(dir, "data"), filepath.Join(dir, "repo")
	for _, args := range [][]string{
		{"datagen", "--out", data, "--users", "200", "--items", "120", "--seed", "5"},
		{"train", "popularity", "--data", data, "--out", filepath.Join(repo, "popularity", "1")},
		{"train", "itemknn", "--data", data, "--out", filepath.Join(repo, "itemknn", "1")},
	} {
		if _, err := run(t, args...); err != nil {
			t.Fatalf("recctl %s: %v", strings.Join(args, " "), err)
		}
	}
	addr := startServer(t, server.Config{Repo: repo, Data: data})
	out, err := waitModels(t, "--addr", addr)
	if err != nil || !strings.Contains(out, "itemknn") || !strings.Contains(out, "ready") {
		t.Fatalf("recctl models = %q, %v; want itemknn ready", out, err)
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"recommend", "--user", "u00001", "--k", "3"}, []string{"route default", "popularity", "rank"}},
		{[]string{"recommend", "--user", "u00001", "--k", "3", "--model", "itemknn", "--json"}, []string{`"itemId"`, `"model:itemknn"`}},
		{[]string{"similar", "--item", "i00001", "--k", "3"}, []string{"model itemknn@1"}},
		{[]string{"score", "--user", "u00001", "--items", "i00001,i00002"}, []string{"model popularity@1", "i00001", "i00002"}},
		// protojson varies its spacing on purpose, so only match tokens.
		{[]string{"models", "itemknn", "--json"}, []string{`"activeVersion"`, `"MODEL_STATE_READY"`}},
	}
	for _, tt := range tests {
		args := append(tt.args, "--addr", addr)
		out, err := run(t, args...)
		if err != nil {
			t.Errorf("recctl %s: %v", strings.Join(args, " "), err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("recctl %s = %q; want it to contain %q", strings.Join(tt.args, " "), out, w)
			}
		}
	}
	out, err = run(t, "models", "itemknn", "--json", "--addr", addr)
	var got struct {
		Model struct {
			ActiveVersion string `json:"activeVersion"`
		} `json:"model"`
	}
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Model.ActiveVersion != "1" {
		t.Errorf("recctl models itemknn --json = %q, %v; want activeVersion 1", out, err)
	}
	if _, err := run(t, "recommend", "--addr", addr, "--user", "u00001", "--k", "5000"); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Errorf("recctl recommend --k 5000 = %v; want an InvalidArgument error", err)
	}
}

// startServer runs server.Run(cfg) on 127.0.0.1:0 (Addr and unset Server
// options are filled in) until the test ends, and returns its address.
func startServer(t *testing.T, cfg server.Config) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	token := cfg.Server.AdminToken
	cfg.Server = server.DefaultOptions()
	cfg.Server.AdminToken = token
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg, nil, func(a net.Addr) { addrc <- a }) }()
	var addr string
	select {
	case a := <-addrc:
		addr = a.String()
	case err := <-done:
		cancel()
		t.Fatalf("server.Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server.Run() = %v after cancel; want nil", err)
		}
	})
	return addr
}

// waitModels runs `recctl models ARGS` until it succeeds (the server answers
// Unavailable until its repository has loaded), for up to a minute (a
// state store seeded under the race detector takes seconds).
func waitModels(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out string
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if out, err = run(t, append([]string{"models"}, args...)...); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling another goroutine's load; no event to wait on
	}
	return out, err
}
