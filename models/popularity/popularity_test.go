package popularity_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
)

// longTail is a catalogue where category a is hugely popular and categories b
// and c are niche, as in real interaction counts.
func longTail() []popularity.Entry {
	return []popularity.Entry{
		{ItemID: "c2", Category: "c", Score: 1},
		{ItemID: "a1", Category: "a", Score: 10000},
		{ItemID: "b1", Category: "b", Score: 5},
		{ItemID: "a3", Category: "a", Score: 8000},
		{ItemID: "b2", Category: "b", Score: 3},
		{ItemID: "a2", Category: "a", Score: 9000},
		{ItemID: "c1", Category: "c", Score: 2},
	}
}

func mustNew(t *testing.T, entries []popularity.Entry, scope popularity.Scope) *popularity.Model {
	t.Helper()
	m, err := popularity.New(entries, scope)
	if err != nil {
		t.Fatalf("New(%v, %q) error = %v", entries, scope, err)
	}
	return m
}

func itemIDs(s []models.Scored) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.ItemID
	}
	return out
}

func history(items ...string) []dataset.Interaction {
	h := make([]dataset.Interaction, len(items))
	for i, id := range items {
		h[i] = dataset.Interaction{UserID: "u", ItemID: id, Event: dataset.View, Value: 1, Timestamp: int64(i)}
	}
	return h
}

// notSeen allows every item outside h, as the router does by default.
func notSeen(h []dataset.Interaction) func(string) bool {
	seen := map[string]bool{}
	for _, in := range h {
		seen[in.ItemID] = true
	}
	return func(id string) bool { return !seen[id] }
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name    string
		entries []popularity.Entry
		scope   popularity.Scope
		want    string
	}{
		{"empty id", []popularity.Entry{{ItemID: "", Score: 1}}, popularity.Global, "empty item id"},
		{"NaN", []popularity.Entry{{ItemID: "x", Score: math.NaN()}}, popularity.Global, "finite"},
		{"Inf", []popularity.Entry{{ItemID: "x", Score: math.Inf(1)}}, popularity.Global, "finite"},
		{"negative", []popularity.Entry{{ItemID: "x", Score: -1}}, popularity.Global, "non-negative"},
		{"duplicate", []popularity.Entry{{ItemID: "x", Score: 1}, {ItemID: "x", Score: 2}}, popularity.Global, `"x": duplicate`},
		{"bad scope", []popularity.Entry{{ItemID: "x", Score: 1}}, "brand", `scope "brand"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := popularity.New(tt.entries, tt.scope)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%v, %q) = %v, %v; want error containing %q", tt.entries, tt.scope, m, err, tt.want)
			}
		})
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, scope := range []popularity.Scope{popularity.Global, popularity.Category} {
		m := mustNew(t, longTail(), scope)
		var buf bytes.Buffer
		if err := m.Save(&buf); err != nil {
			t.Fatalf("Save() = %v", err)
		}
		got, err := popularity.Load(bytes.NewReader(buf.Bytes()), popularity.Options{Scope: scope})
		if err != nil {
			t.Fatalf("Load(Save()) error = %v", err)
		}
		if !reflect.DeepEqual(got.Entries(), m.Entries()) {
			t.Errorf("Load(Save()).Entries() = %v; want %v", got.Entries(), m.Entries())
		}
		q := models.Query{K: 4, History: history("b2")}
		want, _ := m.Recommend(t.Context(), q)
		gotRec, _ := got.Recommend(t.Context(), q)
		if !reflect.DeepEqual(gotRec, want) {
			t.Errorf("scope %s: loaded model Recommend = %v; want %v", scope, gotRec, want)
		}
	}
}

func TestSaveFormat(t *testing.T) {
	m := mustNew(t, []popularity.Entry{{ItemID: "y", Score: 1}, {ItemID: "x", Category: "c", Score: 2}}, "")
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"id":"x","category":"c","score":2},{"id":"y","score":1}]}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("Save() = %s; want %s", got, want)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"not json", "popular"},
		{"unknown field", `{"items":[{"id":"x","score":1,"count":3}]}`},
		{"negative score", `{"items":[{"id":"x","score":-1}]}`},
		{"duplicate", `{"items":[{"id":"x","score":1},{"id":"x","score":1}]}`},
		{"wrong type", `{"items":[{"id":"x","score":"high"}]}`},
	}
	for _, tt := range tests {
		if m, err := popularity.Load(strings.NewReader(tt.in), popularity.Options{}); err == nil {
			t.Errorf("Load(%s) = %v, nil; want an error", tt.in, m)
		}
	}
}

func TestRecommendGlobal(t *testing.T) {
	ties := []popularity.Entry{
		{ItemID: "x", Score: 5}, {ItemID: "low", Score: 1}, {ItemID: "b", Score: 5},
		{ItemID: "top", Score: 10}, {ItemID: "a", Score: 5},
	}
	tests := []struct {
		name string
		q    models.Query
		want []string
	}{
		{"ties broken by id", models.Query{K: 5}, []string{"top", "a", "b", "x", "low"}},
		{"k smaller than catalogue", models.Query{K: 2}, []string{"top", "a"}},
		{"k larger than catalogue", models.Query{K: 50}, []string{"top", "a", "b", "x", "low"}},
		{"k zero", models.Query{K: 0}, nil},
		{"filter does not shrink the answer", models.Query{K: 3, Allow: func(id string) bool { return id != "a" && id != "top" }}, []string{"b", "x", "low"}},
		{"history ignored in global scope", models.Query{K: 2, History: history("low")}, []string{"top", "a"}},
	}
	m := mustNew(t, ties, popularity.Global)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Recommend(t.Context(), tt.q)
			if err != nil {
				t.Fatalf("Recommend(K=%d) error = %v", tt.q.K, err)
			}
			if ids := itemIDs(got); !(len(ids) == 0 && len(tt.want) == 0) && !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("Recommend(K=%d) = %v; want %v", tt.q.K, ids, tt.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Score > got[i-1].Score {
					t.Errorf("Recommend(K=%d) score %v after %v; want non-increasing", tt.q.K, got[i].Score, got[i-1].Score)
				}
			}
		})
	}
	got, _ := m.Recommend(t.Context(), models.Query{K: 2})
	if got[0].Score != 1 || got[1].Score != 0.5 {
		t.Errorf("Recommend scores = %v, %v; want 1 and 0.5 (normalised by the maximum)", got[0].Score, got[1].Score)
	}
}

func TestRecommendCategory(t *testing.T) {
	m := mustNew(t, longTail(), popularity.Category)
	tests := []struct {
		name    string
		history []dataset.Interaction
		k       int
		want    []string
	}{
		// Niche category b first, although a1 is 2000 times more popular.
		{"user's category first", history("b2"), 4, []string{"b1", "a1", "a2", "a3"}},
		{"answer never short", history("b2"), 10, []string{"b1", "a1", "a2", "a3", "c1", "c2"}},
		{"several categories before the rest", history("b2", "c2", "c2"), 4, []string{"b1", "c1", "a1", "a2"}},
		{"category already exhausted", history("b1", "b2"), 3, []string{"a1", "a2", "a3"}},
		{"unknown history falls back to global", history("zz"), 3, []string{"a1", "a2", "a3"}},
		{"no history is global", nil, 3, []string{"a1", "a2", "a3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := models.Query{K: tt.k, History: tt.history, Allow: notSeen(tt.history)}
			got, err := m.Recommend(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			if ids := itemIDs(got); !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("Recommend(history %v, K=%d) = %v (%v); want %v", itemsOf(tt.history), tt.k, ids, got, tt.want)
			}
		})
	}
}

func itemsOf(h []dataset.Interaction) []string {
	var out []string
	for _, in := range h {
		out = append(out, in.ItemID)
	}
	return out
}

func TestRecommendCancelled(t *testing.T) {
	m := mustNew(t, longTail(), popularity.Global)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.Recommend(ctx, models.Query{K: 3}); !errors.Is(err, context.Canceled) {
		t.Errorf("Recommend(cancelled) error = %v; want context.Canceled", err)
	}
	if _, err := m.Score(ctx, models.Query{}, []string{"a1"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Score(cancelled) error = %v; want context.Canceled", err)
	}
}

func TestScore(t *testing.T) {
	m := mustNew(t, []popularity.Entry{{ItemID: "a", Score: 8}, {ItemID: "b", Score: 2}, {ItemID: "z", Score: 0}}, popularity.Global)
	tests := []struct {
		ids  []string
		want []float64
	}{
		{[]string{"a", "b", "z"}, []float64{1, 0.25, 0}},
		{[]string{"b", "unknown", "a"}, []float64{0.25, 0, 1}},
		{[]string{}, []float64{}},
	}
	for _, tt := range tests {
		got, err := m.Score(t.Context(), models.Query{}, tt.ids)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Score(%v) = %v; want %v", tt.ids, got, tt.want)
		}
	}
	zero := mustNew(t, []popularity.Entry{{ItemID: "a"}}, popularity.Global)
	if got, _ := zero.Score(t.Context(), models.Query{}, []string{"a"}); got[0] != 0 {
		t.Errorf("Score of an all-zero table = %v; want [0]", got)
	}
}

// writeModel saves m as file in a new version dir with the given spec.
func writeModel(t *testing.T, m *popularity.Model, file string, spec models.Spec) string {
	t.Helper()
	dir := t.TempDir()
	if m != nil {
		var buf bytes.Buffer
		if err := m.Save(&buf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := models.WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

func build(t *testing.T, dir string) (models.Model, error) {
	t.Helper()
	spec, err := models.ReadSpec(dir)
	if err != nil {
		t.Fatalf("ReadSpec(%s) = %v", dir, err)
	}
	return popularity.Build(t.Context(), models.Env{}, models.Version{Name: "pop", ID: "1", Dir: dir, Spec: spec})
}

func TestBuild(t *testing.T) {
	table := mustNew(t, longTail(), popularity.Global)
	q := models.Query{K: 2, History: history("b2"), Allow: notSeen(history("b2"))}
	tests := []struct {
		name string
		file string
		spec models.Spec
		want []string
	}{
		{"defaults", popularity.DefaultFile, models.Spec{Kind: popularity.Kind}, []string{"a1", "a2"}},
		{"custom file", "table.json", models.Spec{Kind: popularity.Kind, File: "table.json"}, []string{"a1", "a2"}},
		{"explicit global", popularity.DefaultFile, models.Spec{Kind: popularity.Kind, Params: map[string]any{"scope": "global"}}, []string{"a1", "a2"}},
		{"category scope from params", popularity.DefaultFile, models.Spec{Kind: popularity.Kind, Params: map[string]any{"scope": "category"}}, []string{"b1", "a1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeModel(t, table, tt.file, tt.spec)
			mm, err := build(t, dir)
			if err != nil {
				t.Fatalf("Build(%+v) error = %v", tt.spec, err)
			}
			rec, ok := mm.(models.Recommender)
			if !ok {
				t.Fatalf("Build(%+v) = %T; want a models.Recommender", tt.spec, mm)
			}
			got, err := rec.Recommend(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			if ids := itemIDs(got); !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("Build(%+v).Recommend = %v; want %v", tt.spec, ids, tt.want)
			}
			if err := mm.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	table := mustNew(t, longTail(), popularity.Global)
	tests := []struct {
		name  string
		table *popularity.Model
		file  string
		spec  models.Spec
		want  string
	}{
		{"missing file", nil, "", models.Spec{Kind: popularity.Kind}, "no such file"},
		{"escaping file", table, popularity.DefaultFile, models.Spec{Kind: popularity.Kind, File: "../popularity.json"}, "escapes"},
		{"unknown scope", table, popularity.DefaultFile, models.Spec{Kind: popularity.Kind, Params: map[string]any{"scope": "brand"}}, `scope "brand"`},
		{"scope not a string", table, popularity.DefaultFile, models.Spec{Kind: popularity.Kind, Params: map[string]any{"scope": 3}}, "params.scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeModel(t, tt.table, tt.file, tt.spec)
			m, err := build(t, dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build(%+v) = %v, %v; want error containing %q", tt.spec, m, err, tt.want)
			}
		})
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, popularity.DefaultFile), []byte(`{"items":[{"id":"x","score":1,"extra":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := models.WriteSpec(dir, models.Spec{Kind: popularity.Kind}); err != nil {
		t.Fatal(err)
	}
	if m, err := build(t, dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, popularity.DefaultFile)) {
		t.Errorf("Build(corrupt table) = %v, %v; want an error naming the file", m, err)
	}
}

func TestRecommendCategoryZeroScoreStillFirst(t *testing.T) {
	m := mustNew(t, []popularity.Entry{
		{ItemID: "top", Category: "a", Score: 100},
		{ItemID: "seen", Category: "b", Score: 1},
		{ItemID: "never", Category: "b", Score: 0},
	}, popularity.Category)
	h := history("seen")
	got, err := m.Recommend(t.Context(), models.Query{K: 2, History: h, Allow: notSeen(h)})
	if err != nil {
		t.Fatal(err)
	}
	if ids, want := itemIDs(got), []string{"never", "top"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("Recommend(history [seen]) = %v (%v); want %v", ids, got, want)
	}
}
