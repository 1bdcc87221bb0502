package impressionlog_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/serving/impressionlog"
	"github.com/recserve/recserve/serving/router"
)

func impression(i int) router.Impression {
	return router.Impression{
		ID: fmt.Sprintf("id-%06d", i), Time: time.Unix(int64(i), 0).UTC(), Kind: "recommend", UserID: "u1",
		Route: "main", Arm: "b", Models: []router.ModelVersion{{Name: "itemknn", Version: "3"}},
		Items: []router.ImpressedItem{{ItemID: "i1", Position: 1, Score: 0.5, Sources: []string{"itemknn"}}},
	}
}

// readLines parses every JSON line of the files matching pattern.
func readLines(t *testing.T, paths ...string) []router.Impression {
	t.Helper()
	var out []router.Impression
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var imp router.Impression
			if err := json.Unmarshal(sc.Bytes(), &imp); err != nil {
				t.Fatalf("%s: line %q: %v", p, sc.Text(), err)
			}
			out = append(out, imp)
		}
		f.Close()
	}
	return out
}

func TestWriteAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "impressions.jsonl")
	l, err := impressionlog.Open(impressionlog.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		l.Log(impression(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Log(impression(n)) // after Close: dropped, not a panic
	got := readLines(t, path)
	if len(got) != n || l.Written() != n {
		t.Fatalf("%d lines, Written %d; want %d", len(got), l.Written(), n)
	}
	for i, imp := range got {
		if imp.ID != fmt.Sprintf("id-%06d", i) || imp.Items[0].Position != 1 || imp.Models[0].Version != "3" {
			t.Fatalf("line %d = %+v; want impression %d in order with its items and models", i, imp, i)
		}
	}
	if l.Dropped() != 1 {
		t.Errorf("Dropped = %d; want 1 (the Log after Close)", l.Dropped())
	}
}

// TestRotation writes more than MaxMB: the file is rotated into a
// timestamped backup and every impression is in one of the two.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "impressions.jsonl")
	l, err := impressionlog.Open(impressionlog.Options{Path: path, MaxMB: 1, Buffer: 100000})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8000 // ~230 bytes each: about 1.8 MB
	for i := range n {
		l.Log(impression(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "impressions-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("backups %v; want one rotated file", files)
	}
	got := readLines(t, files[0], path)
	if len(got)+int(l.Dropped()) != n || l.Dropped() != 0 {
		t.Errorf("%d impressions across the files, %d dropped; want all %d written", len(got), l.Dropped(), n)
	}
	if info, err := os.Stat(files[0]); err != nil || info.Size() > 1<<20 {
		t.Errorf("rotated file %v, %v; want at most 1 MiB", info.Size(), err)
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    impressionlog.Options
		want string
	}{
		{"no path", impressionlog.Options{}, "path is required"},
		{"negative size", impressionlog.Options{Path: filepath.Join(t.TempDir(), "x"), MaxMB: -1}, "must not be negative"},
		{"directory is a file", impressionlog.Options{Path: filepath.Join(file, "x.jsonl")}, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := impressionlog.Open(tt.o)
			if err == nil {
				l.Close()
				t.Fatalf("Open = nil error; want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open error = %v; want one containing %q", err, tt.want)
			}
		})
	}
}
