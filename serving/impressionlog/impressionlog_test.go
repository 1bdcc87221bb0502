package impressionlog_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/serving"
	"github.com/recserve/recserve/serving/impressionlog"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

func impression(i int) router.Impression {
	return router.Impression{
		ID: fmt.Sprintf("id-%06d", i), Time: time.Unix(int64(i), 0).UTC(), Kind: "recommend", UserID: "u1",
		Route: "main", Arm: "b", Models: []router.ModelVersion{{Name: "itemknn", Version: "3"}},
		Items: []router.ImpressedItem{{ItemID: "i1", Position: 1, Score: 0.5, Sources: []string{"itemknn"}}},
	}
}

// readLines parses every JSON line of the files as an impression.
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

// TestRotation writes more than MaxMB of impressions and outcomes: the file
// is rotated into a timestamped backup, every line is whole (Read parses
// each) and every impression and outcome is in one of the two files.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "impressions.jsonl")
	l, err := impressionlog.Open(impressionlog.Options{Path: path, MaxMB: 1, Buffer: 100000})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000 // ~240 bytes an impression, ~200 an outcome: about 1.3 MB
	for i := range n {
		l.Log(impression(i))
		l.LogOutcome(outcome(i))
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
	if info, err := os.Stat(files[0]); err != nil || info.Size() > 1<<20 {
		t.Errorf("rotated file %v, %v; want at most 1 MiB", info, err)
	}
	log, err := impressionlog.Read(path)
	if err != nil {
		t.Fatalf("Read(%s) after rotation: %v", path, err)
	}
	st := log.Stats()
	if want := []string{files[0], path}; !slices.Equal(st.Files, want) {
		t.Errorf("Read files %v; want the backup, then the log: %v", st.Files, want)
	}
	if st.Impressions != n || st.Outcomes != n || st.Orphans != 0 || l.Dropped() != 0 || l.Written() != 2*n {
		t.Errorf("read %d impressions, %d outcomes (%d orphans); written %d, dropped %d; want %d of each, all written", st.Impressions, st.Outcomes, st.Orphans, l.Written(), l.Dropped(), n)
	}
}

// outcome is the click on impression(i)'s item, a purchase for odd i.
func outcome(i int) store.Outcome {
	o := store.Outcome{
		ImpressionID: fmt.Sprintf("id-%06d", i), UserID: "u1", EventID: fmt.Sprintf("e%d", i), ItemID: "i1",
		Type: "view", Position: 1, Time: time.Unix(int64(i)+30, 0).UTC(), ByID: true,
	}
	if i%2 == 1 {
		o.Type, o.Purchase, o.Revenue, o.ByID = "purchase", true, 19.5, false
	}
	return o
}

// TestLogOutcome logs impressions and outcomes interleaved: they are
// written in the order logged, the outcome lines with kind "outcome" and
// exactly the documented snake_case fields, and read back equal.
func TestLogOutcome(t *testing.T) {
	path := filepath.Join(t.TempDir(), "impressions.jsonl")
	l, err := impressionlog.Open(impressionlog.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		l.Log(impression(i))
		l.LogOutcome(outcome(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.LogOutcome(outcome(n)) // after Close: dropped, not a panic
	if l.Dropped() != 1 || l.Written() != 2*n {
		t.Errorf("Written %d, Dropped %d; want %d and 1 (the LogOutcome after Close)", l.Written(), l.Dropped(), 2*n)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 2*n {
		t.Fatalf("%d lines; want %d", len(lines), 2*n)
	}
	wantKeys := []string{"by_id", "event", "event_id", "item_id", "kind", "position", "purchase", "recommendation_id", "revenue", "time", "user_id"}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		wantKind, wantID := "recommend", fmt.Sprintf("id-%06d", i/2)
		if i%2 == 1 {
			wantKind = "outcome"
			if keys := slices.Sorted(maps.Keys(m)); !slices.Equal(keys, wantKeys) {
				t.Errorf("outcome line %d keys %v; want %v", i+1, keys, wantKeys)
			}
		}
		if m["kind"] != wantKind || m["recommendation_id"] != wantID {
			t.Fatalf("line %d = %s; want kind %q of %s (lines in the order logged)", i+1, line, wantKind, wantID)
		}
	}
	if want := `{"kind":"outcome","recommendation_id":"id-000001","user_id":"u1","event_id":"e1","item_id":"i1","event":"purchase","purchase":true,"position":1,"revenue":19.5,"time":"1970-01-01T00:00:31Z","by_id":false}`; lines[3] != want {
		t.Errorf("outcome line = %s; want %s", lines[3], want)
	}
	log, err := impressionlog.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []store.Outcome
	err = log.ScanImpressions(t.Context(), time.Time{}, time.Time{}, func(_ string, _ []store.Impression, outs []store.Outcome) error {
		got = append(got, outs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if i >= len(got) || got[i] != outcome(i) {
			t.Fatalf("outcomes read back %d: %+v; want outcome(%d) = %+v", len(got), got[min(i, len(got)-1)], i, outcome(i))
		}
	}
}

// The serving core hands attributed outcomes to an impression log that
// implements its OutcomeLog: File must.
var _ serving.OutcomeLog = (*impressionlog.File)(nil)

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
