package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/recserve/recserve/internal/testcert"
	"github.com/recserve/recserve/server"
)

const testToken = "recctl-test-token"

// runErr is run that also returns stderr.
func runErr(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = runCommand(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// trainedRepo writes a small data set and a repository with popularity/1,
// and returns their directories.
func trainedRepo(t *testing.T) (data, repo string) {
	t.Helper()
	dir := t.TempDir()
	data, repo = filepath.Join(dir, "data"), filepath.Join(dir, "repo")
	for _, args := range [][]string{
		{"datagen", "--out", data, "--users", "100", "--items", "60", "--seed", "3"},
		{"train", "popularity", "--data", data, "--out", filepath.Join(repo, "popularity", "1")},
	} {
		if _, err := run(t, args...); err != nil {
			t.Fatalf("recctl %s: %v", strings.Join(args, " "), err)
		}
	}
	return data, repo
}

// copyVersion copies a version directory to a fresh directory outside the
// repository (what an ML engineer deploys from).
func copyVersion(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "version")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestDeployCommands deploys, canaries, rolls back, activates and unloads
// through recctl against a real server.
func TestDeployCommands(t *testing.T) {
	data, repo := trainedRepo(t)
	addr := startServer(t, server.Config{Repo: repo, Data: data, Server: server.Options{AdminToken: testToken}})
	t.Setenv(adminTokenEnv, testToken)
	if _, err := waitModels(t, "--addr", addr); err != nil {
		t.Fatal(err)
	}
	src := copyVersion(t, filepath.Join(repo, "popularity", "1"))
	// A file of 2.5 chunks and a nested file travel intact; hidden files are
	// skipped with a note.
	blob := bytes.Repeat([]byte("0123456789abcdef"), chunkSize*5/32)
	if err := os.WriteFile(filepath.Join(src, "blob.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"notes/empty.txt": "", ".DS_Store": "junk"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	steps := []struct {
		args []string
		want []string
	}{
		{[]string{"deploy", "popularity", src, "--activate"}, []string{"deployed popularity version 2", "stable", "popularity serves stable 2", "1:available,2:stable"}},
		{[]string{"models", "popularity"}, []string{"specific", "1:available,2:stable", "version", "stable"}},
		{[]string{"deploy", "--canary", "30", "popularity", src, "--version", "7"}, []string{"deployed popularity version 7", "canary at 30%", "canary 7@30%"}},
		{[]string{"models"}, []string{"7@30%", "2:stable,7:canary"}},
		{[]string{"rollback", "popularity"}, []string{"popularity serves stable 2;", "7:available"}},
		{[]string{"rollback", "popularity"}, []string{"popularity serves stable 1;"}},
		{[]string{"activate", "popularity", "7"}, []string{"popularity serves stable 7;"}},
		{[]string{"deploy", "popularity", src}, []string{"deployed popularity version 8", "not serving", "recctl activate popularity 8", "serves stable 7"}},
		{[]string{"activate", "popularity", "8", "--canary", "5"}, []string{"stable 7, canary 8@5%"}},
		{[]string{"unload", "popularity"}, []string{"popularity serves nothing: unloaded (recctl activate popularity VERSION"}},
		{[]string{"activate", "popularity", "latest"}, []string{"popularity serves stable 8; policy latest"}},
		{[]string{"rollback", "popularity", "--json"}, []string{`"activeVersion"`, `"7"`}},
	}
	for _, st := range steps {
		args := append(st.args, "--addr", addr)
		out, stderr, err := runErr(t, args...)
		if err != nil {
			t.Fatalf("recctl %s: %v\n%s", strings.Join(st.args, " "), err, stderr)
		}
		for _, w := range st.want {
			if !strings.Contains(out, w) {
				t.Errorf("recctl %s = %q; want it to contain %q", strings.Join(st.args, " "), out, w)
			}
		}
		if st.args[0] == "deploy" && !strings.Contains(stderr, "skipping hidden .DS_Store") {
			t.Errorf("recctl %s stderr = %q; want a note about skipping .DS_Store", strings.Join(st.args, " "), stderr)
		}
	}
	for _, f := range []string{"blob.bin", "notes/empty.txt", "model.yaml"} {
		want, _ := os.ReadFile(filepath.Join(src, f))
		got, err := os.ReadFile(filepath.Join(repo, "popularity", "2", filepath.FromSlash(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("deployed %s: %d bytes, %v; want the %d bytes of the source", f, len(got), err, len(want))
		}
	}
	if _, err := os.Stat(filepath.Join(repo, "popularity", "2", ".DS_Store")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("hidden .DS_Store was deployed (stat: %v)", err)
	}
}

func TestDeployCommandErrors(t *testing.T) {
	data, repo := trainedRepo(t)
	addr := startServer(t, server.Config{Repo: repo, Data: data, Server: server.Options{AdminToken: testToken}})
	if _, err := waitModels(t, "--addr", addr); err != nil {
		t.Fatal(err)
	}
	src := copyVersion(t, filepath.Join(repo, "popularity", "1"))
	linked := copyVersion(t, filepath.Join(repo, "popularity", "1"))
	if err := os.Symlink("/etc/passwd", filepath.Join(linked, "passwd")); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		name  string
		token string
		args  []string
		usage bool
		want  string
	}{
		{"no token", "", []string{"deploy", "popularity", src}, false, "RECSERVE_ADMIN_TOKEN is not set"},
		{"wrong token", "nope", []string{"deploy", "popularity", src}, false, "Unauthenticated"},
		{"wrong token rollback", "nope", []string{"rollback", "popularity"}, false, "Unauthenticated"},
		{"symlink", testToken, []string{"deploy", "popularity", linked}, false, "symbolic link"},
		{"not a version dir", testToken, []string{"deploy", "popularity", empty}, false, "not a model version directory"},
		{"bad name", testToken, []string{"deploy", "../evil", src}, false, "header.name"},
		{"existing version", testToken, []string{"deploy", "popularity", src, "--version", "1"}, false, "AlreadyExists"},
		{"unknown version", testToken, []string{"activate", "popularity", "9"}, false, "NotFound"},
		{"nothing to roll back", testToken, []string{"rollback", "popularity"}, false, "FailedPrecondition"},
		{"deploy one arg", testToken, []string{"deploy", "popularity"}, true, "usage"},
		{"activate and canary", testToken, []string{"deploy", "popularity", src, "--activate", "--canary", "10"}, true, "exclusive"},
		{"canary 100", testToken, []string{"activate", "popularity", "1", "--canary", "100"}, true, "percentage"},
		{"activate one arg", testToken, []string{"activate", "popularity"}, true, "usage"},
		{"unload two args", testToken, []string{"unload", "a", "b"}, true, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(adminTokenEnv, tt.token)
			_, _, err := runErr(t, append(tt.args, "--addr", addr)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("recctl %s = %v; want an error containing %q", strings.Join(tt.args, " "), err, tt.want)
			}
			if got := errors.Is(err, errUsage); got != tt.usage {
				t.Errorf("recctl %s: usage error = %v; want %v", strings.Join(tt.args, " "), got, tt.usage)
			}
		})
	}
	// Nothing was deployed.
	out, err := run(t, "models", "--addr", addr)
	if err != nil || versionsColumn(out, "popularity") != "1:stable" {
		t.Errorf("recctl models after refused commands = %q, %v; want popularity versions 1:stable", out, err)
	}
}

// TestClientTLS talks to a TLS server with --tls-ca, and fails without it.
func TestClientTLS(t *testing.T) {
	data, repo := trainedRepo(t)
	certFile, keyFile, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, server.Config{Repo: repo, Data: data, TLSCertFile: certFile, TLSKeyFile: keyFile,
		Server: server.Options{AdminToken: testToken}})
	out, err := waitModels(t, "--addr", addr, "--tls-ca", certFile)
	if err != nil || !strings.Contains(out, "popularity") {
		t.Fatalf("recctl models --tls-ca = %q, %v; want popularity listed", out, err)
	}
	t.Setenv(adminTokenEnv, testToken)
	src := copyVersion(t, filepath.Join(repo, "popularity", "1"))
	out, stderr, err := runErr(t, "deploy", "popularity", src, "--activate", "--addr", addr, "--tls-ca", certFile)
	if err != nil || !strings.Contains(out, "deployed popularity version 2") {
		t.Errorf("recctl deploy over TLS = %q, %v; want version 2 deployed", out, err)
	}
	if strings.Contains(stderr, "without TLS") {
		t.Errorf("recctl deploy over TLS warned %q; want no plaintext warning", stderr)
	}
	for _, args := range [][]string{
		{"models", "--timeout", "1s"},          // plaintext to a TLS server
		{"models", "--timeout", "1s", "--tls"}, // system roots do not trust the test CA
		{"models", "--tls-ca", filepath.Join(repo, "missing.pem")},
		{"models", "--tls-ca", filepath.Join(repo, "popularity", "1", "model.yaml")}, // not PEM
	} {
		if out, _, err := runErr(t, append(args, "--addr", addr)...); err == nil {
			t.Errorf("recctl %s = %q; want an error", strings.Join(args, " "), out)
		}
	}
}

func TestLoopbackAddr(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"localhost:50051", true},
		{"127.0.0.1:1", true},
		{"[::1]:1", true},
		{"10.0.0.1:50051", false},
		{"recserve.prod:443", false},
		{"no-port", false},
	}
	for _, tt := range tests {
		if got := loopbackAddr(tt.addr); got != tt.want {
			t.Errorf("loopbackAddr(%q) = %v; want %v", tt.addr, got, tt.want)
		}
	}
}

// versionsColumn returns the versions column of model's line in a `recctl
// models` table.
func versionsColumn(table, model string) string {
	lines := strings.Split(table, "\n")
	col := slices.Index(strings.Fields(lines[0]), "versions")
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col && f[0] == model {
			return f[col]
		}
	}
	return ""
}
