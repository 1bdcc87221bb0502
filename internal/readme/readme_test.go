// Package readme tests that the README's examples work as written: it builds
// the real binaries, prepares a (smaller) demo data set and repository the
// way `make run` does, starts recserve on a free port and runs every grpcurl
// line of the README against it.
package readme

import (
	"bufio"
	"context"
	"encoding/json"

	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
)

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// grpcurl finds grpcurl in .tools/ (make tools) or on PATH.
func grpcurl(t *testing.T, root string) string {
	t.Helper()
	if p := filepath.Join(root, ".tools", "grpcurl"); fileExists(p) {
		return p
	}
	p, err := exec.LookPath("grpcurl")
	if err != nil {
		t.Skip("grpcurl not installed (make tools)")
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readmeCommands returns the grpcurl command lines of README.md's code blocks.
func readmeCommands(t *testing.T, root string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []string
	sc := bufio.NewScanner(f)
	inCode := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if inCode && strings.HasPrefix(line, "grpcurl ") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) < 4 {
		t.Fatalf("README.md has %d grpcurl examples; want at least 4", len(cmds))
	}
	return cmds
}

// shellWords splits a command line on spaces, honouring single and double
// quotes (without escapes, which the README does not use).
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range line {
		switch {
		case (r == '\'' || r == '"') && (quote == 0 || quote == r):
			if quote == 0 {
				quote = r
			} else {
				quote = 0
			}
			inWord = true
		case r == ' ' && quote == 0:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The README test's demo: big enough for every id and category the examples
// name, small enough to train quickly (the full demo is 5,000 users, 2,000
// items and the neural trainers' own epochs).
const (
	demoUsers  = "1000"
	demoItems  = "400"
	demoEpochs = "2"
)

// adminToken is the README server's admin token; the examples' shell
// variable $RECSERVE_ADMIN_TOKEN stands for it.
const adminToken = "readme-test-token"

func TestREADMEExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and the demo data set")
	}
	root := repoRoot(t)
	gc := grpcurl(t, root)
	cmds := readmeCommands(t, root)
	tmp := t.TempDir()
	bin := func(name string) string { return filepath.Join(tmp, name) }
	for _, name := range []string{"recserve", "recctl"} {
		build := exec.Command("go", "build", "-o", bin(name), "./cmd/"+name)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	data, repo := filepath.Join(tmp, "data"), filepath.Join(tmp, "repo")
	// The demo repository the way `make run` builds it (make train, every
	// model), on a smaller demo data set and with fewer neural epochs, so
	// that the test takes a minute or two rather than the full demo's ten.
	steps := [][]string{
		{bin("recctl"), "datagen", "--out", data, "--users", demoUsers, "--items", demoItems},
		{"make", "-C", root, "--no-print-directory", "train", "DATA=" + data, "REPO=" + repo, "EPOCHS=" + demoEpochs},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", s, err, out)
		}
	}

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, bin("recserve"), "--addr", addr, "--repo", repo, "--data", data,
		"--state", filepath.Join(tmp, "state"), "--log-level", "warn")
	srv.Env = append(os.Environ(), "RECSERVE_ADMIN_TOKEN="+adminToken)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = srv.Wait()
	})
	waitServing(t, gc, addr)

	checkIDsExist(t, cmds, data)
	for _, line := range cmds {
		line := strings.NewReplacer("localhost:50051", addr, "$RECSERVE_ADMIN_TOKEN", adminToken).Replace(line)
		words := shellWords(line)
		out, err := exec.Command(gc, words[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", line, err, out)
			continue
		}
		if strings.Contains(line, "RecommendService/Recommend") {
			checkRecommend(t, line, words, out, data)
		}
	}
}

// idPattern matches the demo's user and item ids inside README examples.
var idPattern = regexp.MustCompile(`"([ui]\d{5,})"`)

// checkIDsExist fails for a user or item id in an example that the demo data
// set does not have: the server would answer (cold start, score 0), but the
// example would not show what it claims.
func checkIDsExist(t *testing.T, cmds []string, dataDir string) {
	t.Helper()
	d, err := dataset.Read(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, it := range d.Items {
		known[it.ID] = true
	}
	for _, in := range d.Interactions {
		known[in.UserID] = true
	}
	for _, line := range cmds {
		for _, m := range idPattern.FindAllStringSubmatch(line, -1) {
			if !known[m[1]] {
				t.Errorf("%s: %s is not in the demo data set", line, m[1])
			}
		}
	}
}

// checkRecommend verifies a Recommend example returns k items, none from the
// user's history or session.
func checkRecommend(t *testing.T, line string, words []string, out []byte, dataDir string) {
	t.Helper()
	var req struct {
		UserID       string   `json:"user_id"`
		K            int      `json:"k"`
		SessionItems []string `json:"session_items"`
	}
	for i, w := range words {
		if w == "-d" && i+1 < len(words) {
			if err := json.Unmarshal([]byte(words[i+1]), &req); err != nil {
				t.Fatalf("%s: request JSON: %v", line, err)
			}
		}
	}
	var resp struct {
		Items []struct {
			ItemID string `json:"itemId"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("%s: response %s: %v", line, out, err)
	}
	want := req.K
	if want == 0 {
		want = 10
	}
	if len(resp.Items) != want {
		t.Errorf("%s returned %d items; want %d", line, len(resp.Items), want)
	}
	seen := map[string]bool{}
	for _, id := range req.SessionItems {
		seen[id] = true
	}
	if req.UserID != "" {
		d, err := dataset.Read(dataDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range d.Interactions {
			if in.UserID == req.UserID {
				seen[in.ItemID] = true
			}
		}
		if len(seen) == 0 {
			t.Errorf("%s: user %s has no history in the demo data; the example should show a known user", line, req.UserID)
		}
	}
	for _, it := range resp.Items {
		if seen[it.ItemID] {
			t.Errorf("%s returned %s, already in the user's history or session", line, it.ItemID)
		}
	}
}

func waitServing(t *testing.T, gc, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command(gc, "-plaintext", "-max-time", "1", addr, "grpc.health.v1.Health/Check").CombinedOutput()
		if err == nil && strings.Contains(string(out), `"SERVING"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s not SERVING after 60s: %v\n%s", addr, err, out)
		}
		time.Sleep(100 * time.Millisecond) // polling a separate process; no event to wait on
	}
}
