package repository_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/builtin"
	"github.com/recserve/recserve/models/onnx"
	"github.com/recserve/recserve/models/repository"
)

// BenchmarkReloadSoak unloads and reloads an ONNX model b.N times through
// the repository (each load a new onnxruntime session, validated with a
// probe, each unload closing the old one after it drained) and reports the
// process's resident memory before and after: onnxruntime sessions that are
// not freed show up here. Run it with the model a deployment would reload:
//
//	ONNX_BENCH_MODEL=$PWD/var/demo/eval-repo/rnn/1 go test -run '^$' \
//	    -bench ReloadSoak -benchtime 200x ./models/repository/
//
// Without ONNX_BENCH_MODEL it uses the small user_vector test fixture.
func BenchmarkReloadSoak(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("resident memory is read from /proc/self/status (Linux)")
	}
	lib, err := onnx.FindLibrary()
	if err != nil {
		b.Skipf("onnxruntime library not found (run `make ort`): %v", err)
	}
	rt, err := onnx.NewRuntime(lib)
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	src := os.Getenv("ONNX_BENCH_MODEL")
	repo := b.TempDir()
	dst := filepath.Join(repo, "m", "1")
	if src == "" {
		src = filepath.Join("..", "onnx", "testdata")
		writeFixtureVersion(b, src, dst)
	} else if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		b.Fatal(err)
	}
	r, err := repository.Open(b.Context(), repository.Options{Dir: repo, Registry: builtin.Registry(builtin.WithONNX(rt, nil)),
		Probe: &repository.Probe{Query: models.Query{K: 10, History: []dataset.Interaction{{ItemID: "i01", Event: dataset.View}}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if in, _ := r.Info("m"); in.State != repository.StateReady {
		b.Fatalf("model m: state %v, error %s", in.State, in.Err)
	}
	cycle := func() {
		if _, err := r.Unload(b.Context(), "m"); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Activate(b.Context(), "m", "1", 0); err != nil {
			b.Fatal(err)
		}
		l, err := r.Acquire("m", "u")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Model.(models.Recommender).Recommend(b.Context(), models.Query{K: 10}); err != nil {
			b.Fatal(err)
		}
		l.Release()
	}
	// Warm up: allocator arenas and onnxruntime's per-process state settle.
	for range 10 {
		cycle()
	}
	before := rss(b)
	b.ResetTimer()
	for b.Loop() {
		cycle()
	}
	b.StopTimer()
	after := rss(b)
	b.ReportMetric(before/(1<<20), "rss-before-MB")
	b.ReportMetric(after/(1<<20), "rss-after-MB")
	b.ReportMetric((after-before)/(1<<20), "rss-growth-MB")
}

// rss returns the resident set size in bytes after a full GC.
func rss(b *testing.B) float64 {
	b.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// writeFixtureVersion makes a version directory of the user_vector test model.
func writeFixtureVersion(b *testing.B, testdata, dst string) {
	b.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		b.Fatal(err)
	}
	for _, f := range []string{"user_vector.onnx", "items.txt"} {
		raw, err := os.ReadFile(filepath.Join(testdata, f))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), raw, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := models.WriteSpec(dst, models.Spec{Kind: onnx.Kind, File: "user_vector.onnx", Items: "items.txt", Signature: onnx.UserVector}); err != nil {
		b.Fatal(err)
	}
}
