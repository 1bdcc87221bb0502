package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/recserve/recserve"

// rule forbids packages under From (module-relative, "" = every package) to
// depend on packages under any of Not, directly or through other packages.
type rule struct {
	From string
	Not  []string
}

// rules is the layering of DESIGN.md. Tests may reach further (a model's
// test trains it with training/trainer), so only non-test dependencies
// count, except that no test below the server may import it.
var rules = []rule{
	{From: "dataset", Not: []string{"models", "serving", "server", "training", "cmd", "proto"}},
	{From: "models", Not: []string{"serving", "server", "training", "cmd", "proto"}},
	{From: "serving", Not: []string{"server", "training", "cmd", "proto"}},
	{From: "training", Not: []string{"server", "cmd", "proto"}},
	{From: "server", Not: []string{"cmd", "training"}},
}

// testRules forbid test imports (direct): the layers below the gRPC server
// never start one in their tests.
var testRules = []rule{
	{From: "dataset", Not: []string{"server", "cmd"}},
	{From: "models", Not: []string{"server", "cmd"}},
	{From: "serving", Not: []string{"server", "cmd"}},
	{From: "training", Not: []string{"server", "cmd"}},
}

// pkg is what `go list -json` tells of one package.
type pkg struct {
	ImportPath   string
	Deps         []string
	TestImports  []string
	XTestImports []string
}

// under reports whether the module-relative path p is dir or inside it.
func under(p, dir string) bool {
	return dir == "" || p == dir || strings.HasPrefix(p, dir+"/")
}

// violations lists every import of pkgs that breaks rules (over Deps) or
// testRules (over test imports), as "pkg imports dep".
func violations(pkgs []pkg, rules, testRules []rule) []string {
	rel := func(p string) (string, bool) {
		if p == module {
			return "", true
		}
		r, ok := strings.CutPrefix(p, module+"/")
		return r, ok
	}
	check := func(out []string, from string, deps []string, rs []rule, what string) []string {
		for _, r := range rs {
			if !under(from, r.From) {
				continue
			}
			for _, d := range deps {
				dr, ok := rel(d)
				if !ok {
					continue
				}
				for _, not := range r.Not {
					if under(dr, not) {
						out = append(out, fmt.Sprintf("%s %s %s (%s/ must not depend on %s/)", from, what, dr, r.From, not))
					}
				}
			}
		}
		return out
	}
	var out []string
	for _, p := range pkgs {
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		out = check(out, from, p.Deps, rules, "depends on")
		out = check(out, from, append(slices.Clone(p.TestImports), p.XTestImports...), testRules, "tests import")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestViolations(t *testing.T) {
	tests := []struct {
		name string
		pkg  pkg
		want int
	}{
		{"models on dataset", pkg{ImportPath: module + "/models/itemknn", Deps: []string{module + "/dataset", "fmt"}}, 0},
		{"models on serving", pkg{ImportPath: module + "/models/itemknn", Deps: []string{module + "/serving/router"}}, 1},
		{"models on server", pkg{ImportPath: module + "/models", Deps: []string{module + "/server"}}, 1},
		{"serving on server", pkg{ImportPath: module + "/serving/router", Deps: []string{module + "/server"}}, 1},
		{"training on server", pkg{ImportPath: module + "/training/eval", Deps: []string{module + "/server", module + "/serving"}}, 1},
		{"training on serving", pkg{ImportPath: module + "/training/eval", Deps: []string{module + "/serving", module + "/models"}}, 0},
		{"server on serving", pkg{ImportPath: module + "/server", Deps: []string{module + "/serving/router"}}, 0},
		{"prefix is not a parent", pkg{ImportPath: module + "/models", Deps: []string{module + "/serverless"}}, 0},
		{"test imports server", pkg{ImportPath: module + "/serving", XTestImports: []string{module + "/server"}}, 1},
		{"test imports training", pkg{ImportPath: module + "/models/itemknn", TestImports: []string{module + "/training/trainer"}}, 0},
		{"cmd imports everything", pkg{ImportPath: module + "/cmd/recctl", Deps: []string{module + "/server", module + "/training/eval"}}, 0},
	}
	for _, tt := range tests {
		if got := violations([]pkg{tt.pkg}, rules, testRules); len(got) != tt.want {
			t.Errorf("%s: violations = %q; want %d", tt.name, got, tt.want)
		}
	}
}

// TestLayering runs `go list -deps` over the module and fails on any import
// that points up.
func TestLayering(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", "list", "-json=ImportPath,Deps,TestImports,XTestImports", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; want the whole module", len(pkgs))
	}
	for _, v := range violations(pkgs, rules, testRules) {
		t.Error(v)
	}
}
