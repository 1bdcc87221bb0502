package impressionlog_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/serving/experiment"
	"github.com/recserve/recserve/serving/impressionlog"
	"github.com/recserve/recserve/serving/store"
)

var _ experiment.Source = (*impressionlog.Log)(nil)

// t0 is the time the fixtures' minutes count from.
var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func at(min int) string { return t0.Add(time.Duration(min) * time.Minute).Format(time.RFC3339Nano) }

// imp is an impression line of user at minute min showing items.
func imp(id, user string, min int, arm string, items ...string) string {
	var its []string
	for i, it := range items {
		its = append(its, fmt.Sprintf(`{"item_id":%q,"position":%d,"score":0.5,"sources":["itemknn"]}`, it, i+1))
	}
	userField := ""
	if user != "" {
		userField = fmt.Sprintf(`"user_id":%q,`, user)
	}
	return fmt.Sprintf(`{"recommendation_id":%q,"time":%q,"kind":"recommend",%s"route":"main","arm":%q,"models":[{"name":"itemknn","version":"3"}],"items":[%s]}`,
		id, at(min), userField, arm, strings.Join(its, ","))
}

// out is an outcome line: event ev of user on item, attributed to the
// impression id, at minute min.
func out(id, ev, user, item string, min int) string {
	return fmt.Sprintf(`{"kind":"outcome","recommendation_id":%q,"user_id":%q,"event_id":%q,"item_id":%q,"event":"view","purchase":false,"position":1,"revenue":0,"time":%q,"by_id":true}`,
		id, user, ev, item, at(min))
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// scanned is what ScanImpressions gave: per user, the impression ids and
// the event ids of the outcomes.
type scanned struct {
	user string
	imps []string
	outs []string
}

func scanAll(t *testing.T, src experiment.Source, since, until time.Time) []scanned {
	t.Helper()
	var got []scanned
	err := src.ScanImpressions(context.Background(), since, until, func(user string, imps []store.Impression, outs []store.Outcome) error {
		s := scanned{user: user}
		for _, imp := range imps {
			s.imps = append(s.imps, imp.ID)
		}
		for _, o := range outs {
			s.outs = append(s.outs, o.EventID)
		}
		got = append(got, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func gz(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRead(t *testing.T) {
	const (
		backup1 = "impressions-2026-12-01T10-00-00.000.jsonl"
		backup2 = "impressions-2026-12-02T10-00-00.000.jsonl"
	)
	tests := []struct {
		name  string
		files map[string]string // relative path → content
		args  []string          // relative to the directory
		// wantFiles are the files read, in order.
		wantFiles []string
		want      []scanned
		// wantStats are Impressions, Outcomes, Anonymous, Orphans.
		wantStats [4]int
	}{
		{
			name: "both kinds, users sorted, impressions oldest first",
			files: map[string]string{"impressions.jsonl": lines(
				imp("r3", "u2", 5, "exp/b", "i1"),
				imp("r1", "u1", 3, "exp/a", "i1", "i2"),
				out("r1", "e1", "u1", "i2", 4),
				imp("r2", "u1", 1, "exp/a", "i3"),
				"",
				out("r3", "e2", "u2", "i1", 6),
			)},
			args:      []string{"impressions.jsonl"},
			wantFiles: []string{"impressions.jsonl"},
			want:      []scanned{{"u1", []string{"r2", "r1"}, []string{"e1"}}, {"u2", []string{"r3"}, []string{"e2"}}},
			wantStats: [4]int{3, 2, 0, 0},
		},
		{
			name: "rotated backups read with the log, oldest first; other files not",
			files: map[string]string{
				backup2:                 lines(imp("r2", "u1", 2, "", "i1")),
				"impressions.jsonl":     lines(out("r1", "e1", "u1", "i1", 3)),
				backup1:                 lines(imp("r1", "u1", 1, "", "i1")),
				"impressions-old.jsonl": "not read",
				"other.jsonl":           "not read",
			},
			args:      []string{"impressions.jsonl"},
			wantFiles: []string{backup1, backup2, "impressions.jsonl"},
			want:      []scanned{{"u1", []string{"r1", "r2"}, []string{"e1"}}},
			wantStats: [4]int{2, 1, 0, 0},
		},
		{
			name: "a glob over replicas joins an outcome to another replica's impression",
			files: map[string]string{
				"replica-a/impressions.jsonl":                               lines(imp("r1", "u1", 1, "", "i1")),
				"replica-a/impressions-2026-12-01T09-00-00.000.jsonl":       lines(imp("r0", "u1", 0, "", "i1")),
				"replica-b/impressions.jsonl":                               lines(out("r1", "e1", "u1", "i1", 2)),
				"replica-b/impressions-2026-12-01T09-30-00.000.jsonl.gz":    "", // replaced by gzip below
				"replica-b/impressions-2026-12-01T09-30-00.000.jsonl.extra": "not read",
			},
			args: []string{"replica-*/impressions.jsonl"},
			wantFiles: []string{
				"replica-a/impressions-2026-12-01T09-00-00.000.jsonl", "replica-a/impressions.jsonl",
				"replica-b/impressions-2026-12-01T09-30-00.000.jsonl.gz", "replica-b/impressions.jsonl",
			},
			want:      []scanned{{"u1", []string{"r0", "r1", "rz"}, []string{"e1"}}},
			wantStats: [4]int{3, 1, 0, 0},
		},
		{
			name: "the log's current file gone: its backups",
			files: map[string]string{
				backup1: lines(imp("r1", "u1", 1, "", "i1")),
			},
			args:      []string{"impressions.jsonl"},
			wantFiles: []string{backup1},
			want:      []scanned{{"u1", []string{"r1"}, nil}},
			wantStats: [4]int{1, 0, 0, 0},
		},
		{
			name: "a file named twice (and matched by a glob) is read once",
			files: map[string]string{
				"impressions.jsonl": lines(imp("r1", "u1", 1, "", "i1"), out("r1", "e1", "u1", "i1", 2)),
			},
			args:      []string{"impressions.jsonl", "./impressions.jsonl", "*.jsonl"},
			wantFiles: []string{"impressions.jsonl"},
			want:      []scanned{{"u1", []string{"r1"}, []string{"e1"}}},
			wantStats: [4]int{1, 1, 0, 0},
		},
		{
			name: "anonymous impressions counted, not scanned; orphan outcomes counted, not joined",
			files: map[string]string{"impressions.jsonl": lines(
				imp("r1", "", 1, "", "i1"),
				imp("r2", "u1", 1, "", "i1"),
				out("gone", "e1", "u1", "i1", 2),
			)},
			args:      []string{"impressions.jsonl"},
			wantFiles: []string{"impressions.jsonl"},
			want:      []scanned{{"u1", []string{"r2"}, nil}},
			wantStats: [4]int{2, 1, 1, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				if strings.HasSuffix(name, ".gz") {
					content = gz(t, lines(imp("rz", "u1", 9, "", "i1")))
				}
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var args []string
			for _, a := range tt.args {
				args = append(args, filepath.Join(dir, a))
			}
			log, err := impressionlog.Read(args...)
			if err != nil {
				t.Fatalf("Read(%v): %v", tt.args, err)
			}
			st := log.Stats()
			var files []string
			for _, f := range st.Files {
				rel, _ := filepath.Rel(dir, f)
				files = append(files, rel)
			}
			if !slices.Equal(files, tt.wantFiles) {
				t.Errorf("files read %v; want %v", files, tt.wantFiles)
			}
			if got := [4]int{st.Impressions, st.Outcomes, st.Anonymous, st.Orphans}; got != tt.wantStats {
				t.Errorf("impressions, outcomes, anonymous, orphans = %v; want %v", got, tt.wantStats)
			}
			got := scanAll(t, log, time.Time{}, time.Time{})
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("scan = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	const gzBackup = "impressions-2026-12-01T10-00-00.000.jsonl.gz"
	tests := []struct {
		name    string
		content string   // of impressions.jsonl
		extra   string   // a file besides it, "\x1f\x8b" (a truncated gzip stream)
		args    []string // relative to the directory; default impressions.jsonl
		want    string   // in the error
	}{
		{"malformed line", lines(imp("r1", "u1", 1, "", "i1"), `{"kind":"recommend","recommendation_id":`), "", nil, "impressions.jsonl:2: not a JSON object"},
		{"a line that is not an object", lines(`[1,2]`), "", nil, "impressions.jsonl:1: not a JSON object"},
		{"unknown kind", lines(imp("r1", "u1", 1, "", "i1"), "", `{"kind":"click"}`), "", nil, `impressions.jsonl:3: kind "click" is not recommend, similar or outcome`},
		{"no kind", lines(`{"recommendation_id":"r1"}`), "", nil, `impressions.jsonl:1: kind "" is not`},
		{"a field of the wrong type", lines(`{"kind":"recommend","recommendation_id":"r1","time":"` + at(1) + `","items":[{"item_id":"i1","position":"first"}]}`), "", nil, "impressions.jsonl:1: impression: json"},
		{"impression without an id", lines(`{"kind":"similar","time":"` + at(1) + `","user_id":"u1"}`), "", nil, "impressions.jsonl:1: impression without recommendation_id or time"},
		{"outcome without a user", lines(`{"kind":"outcome","recommendation_id":"r1","time":"` + at(1) + `"}`), "", nil, "impressions.jsonl:1: outcome without recommendation_id, user_id or time"},
		{"a truncated gzip backup", "", gzBackup, nil, gzBackup},
		{"no file", "", "", []string{"nothing.jsonl"}, "no log file matches"},
		{"a glob matching nothing", "", "", []string{"*.csv"}, "no log file matches"},
		{"a bad pattern", "", "", []string{"[.jsonl"}, "syntax error in pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "impressions.jsonl"), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.extra != "" {
				if err := os.WriteFile(filepath.Join(dir, tt.extra), []byte("\x1f\x8b"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{filepath.Join(dir, "impressions.jsonl")}
			if tt.args != nil {
				args = args[:0]
				for _, a := range tt.args {
					args = append(args, filepath.Join(dir, a))
				}
			}
			_, err := impressionlog.Read(args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read(%v) error = %v; want one containing %q", tt.args, err, tt.want)
			}
		})
	}
	if _, err := impressionlog.Read(); err == nil {
		t.Error("Read() = nil error; want one (no log named)")
	}
	if _, err := impressionlog.Read(filepath.Join(t.TempDir(), "none.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(missing) error = %v; want it to wrap os.ErrNotExist", err)
	}
}

// TestScanWindow checks ScanImpressions' [since, until) filter: a user
// without impressions in the window is not called, and only the outcomes
// of the returned impressions come with them.
func TestScanWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "impressions.jsonl")
	content := lines(
		imp("a1", "ua", 0, "", "i1"), out("a1", "ea1", "ua", "i1", 1),
		imp("a2", "ua", 10, "", "i1"), out("a2", "ea2", "ua", "i1", 11),
		imp("a3", "ua", 20, "", "i1"), out("a3", "ea3", "ua", "i1", 21),
		imp("b1", "ub", 20, "", "i1"), imp("b2", "ub", 20, "", "i2"), out("b2", "eb2", "ub", "i2", 30),
	)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := impressionlog.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	minute := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name         string
		since, until time.Time
		want         []scanned
	}{
		{"open", time.Time{}, time.Time{}, []scanned{
			{"ua", []string{"a1", "a2", "a3"}, []string{"ea1", "ea2", "ea3"}},
			{"ub", []string{"b1", "b2"}, []string{"eb2"}},
		}},
		{"since is inclusive", minute(10), time.Time{}, []scanned{
			{"ua", []string{"a2", "a3"}, []string{"ea2", "ea3"}},
			{"ub", []string{"b1", "b2"}, []string{"eb2"}},
		}},
		{"until is exclusive", time.Time{}, minute(20), []scanned{
			{"ua", []string{"a1", "a2"}, []string{"ea1", "ea2"}},
		}},
		{"the middle: an outcome after until still counts", minute(5), minute(15), []scanned{
			{"ua", []string{"a2"}, []string{"ea2"}},
		}},
		{"nothing", minute(21), minute(40), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scanAll(t, log, tt.since, tt.until); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ScanImpressions(%v, %v) = %v; want %v", tt.since, tt.until, got, tt.want)
			}
		})
	}

	stop := errors.New("stop")
	calls := 0
	err = log.ScanImpressions(t.Context(), time.Time{}, time.Time{}, func(string, []store.Impression, []store.Outcome) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ScanImpressions with fn failing = %v after %d calls; want fn's error after 1", err, calls)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := log.ScanImpressions(ctx, time.Time{}, time.Time{}, func(string, []store.Impression, []store.Outcome) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("ScanImpressions on a cancelled context = %v; want context.Canceled", err)
	}
}
