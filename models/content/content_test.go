package content_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/content"
	"github.com/recserve/recserve/models/vocab"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/trainer"
)

const day = 86400

var inv2 = float32(1 / math.Sqrt2)

// handModel has terms a, b, c and items x = a, y = b, z = (a+b)/√2, w = c.
func handModel(t testing.TB, o content.Options) *content.Model {
	t.Helper()
	items, err := vocab.New([]string{"x", "y", "z", "w"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := content.New(items, []string{"a", "b", "c"}, []float32{1, 1, 1}, []content.Vector{
		{Terms: []int32{0}, Weights: []float32{1}},
		{Terms: []int32{1}, Weights: []float32{1}},
		{Terms: []int32{0, 1}, Weights: []float32{inv2, inv2}},
		{Terms: []int32{2}, Weights: []float32{1}},
	}, content.DefaultAnalyzer(), o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ev(item string, e dataset.Event, ts int64) dataset.Interaction {
	return dataset.Interaction{UserID: "u", ItemID: item, Event: e, Value: 1, Timestamp: ts}
}

func views(items ...string) []dataset.Interaction {
	h := make([]dataset.Interaction, len(items))
	for i, id := range items {
		h[i] = ev(id, dataset.View, int64(i))
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

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestRecommendHand(t *testing.T) {
	x, y, z := 1/math.Sqrt(26), 5/math.Sqrt(26), 6/math.Sqrt(52)
	tests := []struct {
		name    string
		opt     content.Options
		history []dataset.Interaction
		allow   bool // exclude the history
		k       int
		want    []models.Scored
	}{
		{"one view", content.Options{}, views("x"), false, 10,
			[]models.Scored{{ItemID: "x", Score: 1}, {ItemID: "z", Score: 1 / math.Sqrt2}}},
		{"seen excluded", content.Options{}, views("x"), true, 10,
			[]models.Scored{{ItemID: "z", Score: 1 / math.Sqrt2}}},
		{"event weights", content.Options{}, []dataset.Interaction{ev("x", dataset.View, 0), ev("y", dataset.Purchase, 0)}, false, 10,
			[]models.Scored{{ItemID: "y", Score: y}, {ItemID: "z", Score: z}, {ItemID: "x", Score: x}}},
		{"k cuts", content.Options{}, []dataset.Interaction{ev("x", dataset.View, 0), ev("y", dataset.Purchase, 0)}, false, 1,
			[]models.Scored{{ItemID: "y", Score: y}}},
		{"custom event weights", content.Options{Weights: models.EventWeights{dataset.View: 5, dataset.Purchase: 1}},
			[]dataset.Interaction{ev("x", dataset.View, 0), ev("y", dataset.Purchase, 0)}, false, 10,
			[]models.Scored{{ItemID: "x", Score: y}, {ItemID: "z", Score: z}, {ItemID: "y", Score: x}}},
		// y's purchase is 10 days older than x's view: ×2^-10 with a
		// one-day half-life, so x (weight 1) outweighs y (5/1024).
		{"half-life", content.Options{HalfLifeDays: 1}, []dataset.Interaction{ev("y", dataset.Purchase, 0), ev("x", dataset.View, 10*day)}, true, 10,
			[]models.Scored{{ItemID: "z", Score: (1 + 5.0/1024) / math.Sqrt2 / math.Sqrt(1+25.0/1024/1024)}}},
		{"profile terms", content.Options{ProfileTerms: 1}, []dataset.Interaction{ev("x", dataset.View, 0), ev("y", dataset.Purchase, 0)}, false, 10,
			[]models.Scored{{ItemID: "y", Score: 1}, {ItemID: "z", Score: 1 / math.Sqrt2}}},
		{"unknown items ignored", content.Options{}, views("nope", "x", "gone"), true, 10,
			[]models.Scored{{ItemID: "z", Score: 1 / math.Sqrt2}}},
		{"only unknown items", content.Options{}, views("nope"), false, 10, nil},
		{"empty history", content.Options{}, nil, false, 10, nil},
		{"k zero", content.Options{}, views("x"), false, 0, nil},
		{"negative rating ignored", content.Options{}, []dataset.Interaction{{ItemID: "x", Event: dataset.Rating, Value: -3}}, false, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := handModel(t, tt.opt)
			q := models.Query{History: tt.history, K: tt.k}
			if tt.allow {
				q.Allow = notSeen(tt.history)
			}
			got, err := m.Recommend(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Recommend() = %v; want %v", got, tt.want)
			}
			for i := range got {
				if got[i].ItemID != tt.want[i].ItemID || !near(got[i].Score, tt.want[i].Score) {
					t.Errorf("Recommend()[%d] = %v; want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestScoreHand(t *testing.T) {
	m := handModel(t, content.Options{})
	h := []dataset.Interaction{ev("x", dataset.View, 0), ev("y", dataset.Purchase, 0)}
	got, err := m.Score(context.Background(), models.Query{History: h}, []string{"w", "y", "unknown", "x", "z"})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0, 5 / math.Sqrt(26), 0, 1 / math.Sqrt(26), 6 / math.Sqrt(52)}
	for i := range want {
		if !near(got[i], want[i]) {
			t.Errorf("Score()[%d] = %v; want %v", i, got[i], want[i])
		}
	}
	got, err = m.Score(context.Background(), models.Query{}, []string{"x", "y"})
	if err != nil || !reflect.DeepEqual(got, []float64{0, 0}) {
		t.Errorf("Score(empty history) = %v, %v; want [0 0]", got, err)
	}
}

func TestSimilarItemsHand(t *testing.T) {
	m := handModel(t, content.Options{})
	tests := []struct {
		item  string
		k     int
		allow func(string) bool
		want  []models.Scored
	}{
		// Ties break by id: x before y.
		{"z", 10, nil, []models.Scored{{ItemID: "x", Score: 1 / math.Sqrt2}, {ItemID: "y", Score: 1 / math.Sqrt2}}},
		{"z", 1, nil, []models.Scored{{ItemID: "x", Score: 1 / math.Sqrt2}}},
		{"z", 10, func(id string) bool { return id != "x" }, []models.Scored{{ItemID: "y", Score: 1 / math.Sqrt2}}},
		{"x", 10, nil, []models.Scored{{ItemID: "z", Score: 1 / math.Sqrt2}}},
		{"w", 10, nil, nil},
		{"x", 0, nil, nil},
	}
	for _, tt := range tests {
		got, err := m.SimilarItems(context.Background(), models.SimilarQuery{ItemID: tt.item, K: tt.k, Allow: tt.allow})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tt.want) {
			t.Errorf("SimilarItems(%s, k=%d) = %v; want %v", tt.item, tt.k, got, tt.want)
			continue
		}
		for i := range got {
			if got[i].ItemID != tt.want[i].ItemID || !near(got[i].Score, tt.want[i].Score) {
				t.Errorf("SimilarItems(%s, k=%d)[%d] = %v; want %v", tt.item, tt.k, i, got[i], tt.want[i])
			}
		}
	}
	_, err := m.SimilarItems(context.Background(), models.SimilarQuery{ItemID: "nope", K: 3})
	if !errors.Is(err, models.ErrNotFound) {
		t.Errorf("SimilarItems(nope) error = %v; want models.ErrNotFound", err)
	}
	if _, err := m.Similarity("x", "nope"); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("Similarity(x, nope) error = %v; want models.ErrNotFound", err)
	}
}

func TestCancelled(t *testing.T) {
	m := handModel(t, content.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Recommend(ctx, models.Query{History: views("x"), K: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Recommend(cancelled) error = %v; want context.Canceled", err)
	}
	if _, err := m.Score(ctx, models.Query{History: views("x")}, []string{"x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Score(cancelled) error = %v; want context.Canceled", err)
	}
	if _, err := m.SimilarItems(ctx, models.SimilarQuery{ItemID: "x", K: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("SimilarItems(cancelled) error = %v; want context.Canceled", err)
	}
}

func TestNewRejects(t *testing.T) {
	one := []content.Vector{{Terms: []int32{0}, Weights: []float32{1}}}
	tests := []struct {
		name  string
		terms []string
		idf   []float32
		vecs  []content.Vector
		a     content.Analyzer
		o     content.Options
		want  string
	}{
		{"vector count", []string{"a"}, []float32{1}, nil, content.DefaultAnalyzer(), content.Options{}, "0 item vectors for 1 items"},
		{"idf count", []string{"a"}, nil, one, content.DefaultAnalyzer(), content.Options{}, "0 idf values for 1 terms"},
		{"empty term", []string{""}, []float32{1}, one, content.DefaultAnalyzer(), content.Options{}, "empty"},
		{"duplicate term", []string{"a", "a"}, []float32{1, 1}, one, content.DefaultAnalyzer(), content.Options{}, "strictly ascending"},
		{"unsorted terms", []string{"b", "a"}, []float32{1, 1}, one, content.DefaultAnalyzer(), content.Options{}, "strictly ascending"},
		{"NaN idf", []string{"a"}, []float32{float32(math.NaN())}, one, content.DefaultAnalyzer(), content.Options{}, "idf"},
		{"zero idf", []string{"a"}, []float32{0}, one, content.DefaultAnalyzer(), content.Options{}, "idf"},
		{"term out of range", []string{"a"}, []float32{1}, []content.Vector{{Terms: []int32{1}, Weights: []float32{1}}}, content.DefaultAnalyzer(), content.Options{}, "out of range"},
		{"negative term", []string{"a"}, []float32{1}, []content.Vector{{Terms: []int32{-1}, Weights: []float32{1}}}, content.DefaultAnalyzer(), content.Options{}, "out of range"},
		{"repeated term", []string{"a", "b"}, []float32{1, 1}, []content.Vector{{Terms: []int32{0, 0}, Weights: []float32{inv2, inv2}}}, content.DefaultAnalyzer(), content.Options{}, "strictly ascending"},
		{"NaN weight", []string{"a"}, []float32{1}, []content.Vector{{Terms: []int32{0}, Weights: []float32{float32(math.NaN())}}}, content.DefaultAnalyzer(), content.Options{}, "weight NaN"},
		{"zero weight", []string{"a"}, []float32{1}, []content.Vector{{Terms: []int32{0}, Weights: []float32{0}}}, content.DefaultAnalyzer(), content.Options{}, "weight 0"},
		{"not normalised", []string{"a"}, []float32{1}, []content.Vector{{Terms: []int32{0}, Weights: []float32{2}}}, content.DefaultAnalyzer(), content.Options{}, "norm"},
		{"length mismatch", []string{"a"}, []float32{1}, []content.Vector{{Terms: []int32{0}}}, content.DefaultAnalyzer(), content.Options{}, "1 terms but 0 weights"},
		{"bad analyzer", []string{"a"}, []float32{1}, one, content.Analyzer{}, content.Options{}, "analyzer"},
		{"bad half-life", []string{"a"}, []float32{1}, one, content.DefaultAnalyzer(), content.Options{HalfLifeDays: -1}, "half_life_days"},
		{"bad profile terms", []string{"a"}, []float32{1}, one, content.DefaultAnalyzer(), content.Options{ProfileTerms: -1}, "profile_terms"},
		{"bad event weight", []string{"a"}, []float32{1}, one, content.DefaultAnalyzer(), content.Options{Weights: models.EventWeights{dataset.View: math.Inf(1)}}, "event_weights"},
	}
	items, err := vocab.New([]string{"x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := content.New(items, tt.terms, tt.idf, tt.vecs, tt.a, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() error = %v; want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := content.New(nil, nil, nil, nil, content.DefaultAnalyzer(), content.Options{}); err == nil {
		t.Error("New(nil vocabulary) = nil error; want an error")
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   content.Options
		err    string
	}{
		{"defaults", nil, content.DefaultOptions(), ""},
		{"typed", map[string]any{"event_weights": "view:2", "half_life_days": 3.5, "profile_terms": 0},
			content.Options{Weights: models.EventWeights{dataset.View: 2, dataset.Cart: 3, dataset.Purchase: 5, dataset.Rating: 1}, HalfLifeDays: 3.5}, ""},
		{"strings", map[string]any{"half_life_days": "7", "profile_terms": "64"},
			content.Options{Weights: models.DefaultEventWeights(), HalfLifeDays: 7, ProfileTerms: 64}, ""},
		{"unknown", map[string]any{"half_life": 7, "k": 1}, content.Options{}, "unknown params half_life, k"},
		{"bad event weights", map[string]any{"event_weights": "view"}, content.Options{}, "event_weights"},
		{"event weights type", map[string]any{"event_weights": 3}, content.Options{}, "event_weights"},
		{"negative half-life", map[string]any{"half_life_days": -1}, content.Options{}, "half_life_days"},
		{"NaN half-life", map[string]any{"half_life_days": "NaN"}, content.Options{}, "half_life_days"},
		{"negative profile terms", map[string]any{"profile_terms": -5}, content.Options{}, "profile_terms"},
		{"fractional profile terms", map[string]any{"profile_terms": 2.5}, content.Options{}, "profile_terms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := content.ParseOptions(tt.params)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("ParseOptions(%v) error = %v; want one containing %q", tt.params, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseOptions(%v) = %+v, %v; want %+v", tt.params, got, err, tt.want)
			}
			// Params round-trips.
			back, err := content.ParseOptions(got.Params())
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Errorf("ParseOptions(%v.Params()) = %+v, %v; want %+v", got, back, err, got)
			}
		})
	}
}

// demo is a model of a small generated catalogue with its users' histories.
type demo struct {
	data      *dataset.Dataset
	model     *content.Model
	histories [][]dataset.Interaction
}

var (
	demoOnce sync.Once
	demoVal  demo
	demoErr  error
)

func demoModel(t testing.TB) demo {
	t.Helper()
	demoOnce.Do(func() {
		d, err := datagen.Generate(datagen.Config{Users: 200, Items: 500})
		if err != nil {
			demoErr = err
			return
		}
		m, err := trainer.FitContent(context.Background(), d.Items, trainer.ContentOptions{Serving: content.DefaultOptions()})
		if err != nil {
			demoErr = err
			return
		}
		byUser := map[string][]dataset.Interaction{}
		var users []string
		for _, in := range d.Interactions {
			if byUser[in.UserID] == nil {
				users = append(users, in.UserID)
			}
			byUser[in.UserID] = append(byUser[in.UserID], in)
		}
		hs := make([][]dataset.Interaction, 0, len(users))
		for _, u := range users {
			hs = append(hs, byUser[u])
		}
		demoVal = demo{data: d, model: m, histories: hs}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoVal
}

// TestRecommendMatchesBruteForce: the inverted index, the lazy filter and the
// widening of the candidate window give exactly the top K of Score over the
// whole catalogue.
func TestRecommendMatchesBruteForce(t *testing.T) {
	d := demoModel(t)
	m := d.model
	ids := m.Items().IDs()
	r := rand.New(rand.NewPCG(1, 2))
	for n, h := range d.histories[:60] {
		// Half the users filter their history; the others also drop a random
		// 70% of the catalogue, so the window has to widen.
		allowed := map[string]bool{}
		for _, id := range ids {
			allowed[id] = n%2 == 0 || r.Float64() < 0.3
		}
		for _, in := range h {
			allowed[in.ItemID] = false
		}
		q := models.Query{History: h, K: 1 + n%25, Allow: func(id string) bool { return allowed[id] }}
		got, err := m.Recommend(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		scores, err := m.Score(context.Background(), q, ids)
		if err != nil {
			t.Fatal(err)
		}
		var want []models.Scored
		for i, id := range ids {
			if allowed[id] && scores[i] > 0 {
				want = append(want, models.Scored{ItemID: id, Score: scores[i]})
			}
		}
		slices.SortFunc(want, func(a, b models.Scored) int {
			if a.Score != b.Score {
				if a.Score > b.Score {
					return -1
				}
				return 1
			}
			return strings.Compare(a.ItemID, b.ItemID)
		})
		want = want[:min(len(want), q.K)]
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("user %d: Recommend(k=%d) = %v; want (brute force) %v", n, q.K, got, want)
		}
	}
}

// TestDeterministicConcurrent: concurrent calls give the answers a sequential
// run gives (the scratch pool leaks nothing between requests).
func TestDeterministicConcurrent(t *testing.T) {
	d := demoModel(t)
	hs := d.histories[:40]
	want := make([][]models.Scored, len(hs))
	for i, h := range hs {
		var err error
		if want[i], err = d.model.Recommend(context.Background(), models.Query{History: h, K: 10, Allow: notSeen(h)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for rep := range 5 {
				for i := range hs {
					i := (i + w + rep) % len(hs)
					got, err := d.model.Recommend(context.Background(), models.Query{History: hs[i], K: 10, Allow: notSeen(hs[i])})
					if err == nil && !reflect.DeepEqual(got, want[i]) {
						err = fmt.Errorf("history %d: Recommend() = %v; want %v", i, got, want[i])
					}
					if err == nil {
						_, err = d.model.SimilarItems(context.Background(), models.SimilarQuery{ItemID: hs[i][0].ItemID, K: 5})
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCosineSymmetry: sim(a, b) = sim(b, a), through Similarity and through
// the postings of SimilarItems.
func TestCosineSymmetry(t *testing.T) {
	m := demoModel(t).model
	ids := m.Items().IDs()
	for _, a := range ids[:40] {
		nb, err := m.SimilarItems(context.Background(), models.SimilarQuery{ItemID: a, K: 5})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range nb {
			ab, _ := m.Similarity(a, s.ItemID)
			ba, _ := m.Similarity(s.ItemID, a)
			if ab != ba || ab != s.Score {
				t.Errorf("Similarity(%s, %s) = %v, Similarity(%s, %s) = %v, SimilarItems score %v; want all equal", a, s.ItemID, ab, s.ItemID, a, ba, s.Score)
			}
			back, err := m.SimilarItems(context.Background(), models.SimilarQuery{ItemID: s.ItemID, K: len(ids)})
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(back, func(x models.Scored) bool { return x.ItemID == a })
			if i < 0 || back[i].Score != s.Score {
				t.Errorf("SimilarItems(%s) misses %s at score %v (symmetry)", s.ItemID, a, s.Score)
			}
		}
		if self, _ := m.Similarity(a, a); len(nb) > 0 && !near(self, 1) {
			t.Errorf("Similarity(%s, %s) = %v; want 1", a, a, self)
		}
	}
}

// writeVersion writes a version directory by hand, as an engineer deploying
// a model trained elsewhere would: artifact, vocabulary, model.yaml.
func writeVersion(t *testing.T, m *content.Model, spec models.Spec) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "tfidf.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Items().WriteFile(filepath.Join(dir, "vocab.txt")); err != nil {
		t.Fatal(err)
	}
	if err := models.WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBuild(t *testing.T) {
	m := demoModel(t).model
	dir := writeVersion(t, m, models.Spec{Kind: content.Kind, File: "tfidf.bin", Items: "vocab.txt",
		Params: map[string]any{"half_life_days": 7, "profile_terms": 32}})
	spec, err := models.ReadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := content.Build(context.Background(), models.Env{}, models.Version{Name: "c", ID: "1", Dir: dir, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	cm := got.(*content.Model)
	if o := cm.Options(); o.HalfLifeDays != 7 || o.ProfileTerms != 32 {
		t.Errorf("Build() options = %+v; want half-life 7, profile terms 32", o)
	}
	if roles := models.Roles(got); !reflect.DeepEqual(roles, []string{"recommender", "scorer", "similar_items"}) {
		t.Errorf("Roles(content) = %v; want recommender, scorer, similar_items", roles)
	}
	if !reflect.DeepEqual(cm.Terms(), m.Terms()) || cm.Items().Len() != m.Items().Len() {
		t.Error("Build() model differs from the saved one")
	}

	// The default file names, and the failures.
	def := writeVersion(t, m, models.Spec{Kind: content.Kind})
	for _, mv := range [][2]string{{"tfidf.bin", content.DefaultFile}, {"vocab.txt", vocab.DefaultFile}} {
		if err := os.Rename(filepath.Join(def, mv[0]), filepath.Join(def, mv[1])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := content.Build(context.Background(), models.Env{}, models.Version{Dir: def, Spec: models.Spec{Kind: content.Kind}}); err != nil {
		t.Errorf("Build(default names) error = %v; want nil", err)
	}
	short := writeVersion(t, m, models.Spec{Kind: content.Kind})
	ids := m.Items().IDs()
	if err := os.WriteFile(filepath.Join(short, "vocab.txt"), []byte(strings.Join(ids[:len(ids)-1], "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		spec models.Spec
		want string
	}{
		{"missing artifact", dir, models.Spec{Kind: content.Kind, File: "nope.bin", Items: "vocab.txt"}, "nope.bin"},
		{"missing items", dir, models.Spec{Kind: content.Kind, File: "tfidf.bin", Items: "nope.txt"}, "nope.txt"},
		{"escaping file", dir, models.Spec{Kind: content.Kind, File: "../tfidf.bin", Items: "vocab.txt"}, "escapes"},
		{"escaping items", dir, models.Spec{Kind: content.Kind, File: "tfidf.bin", Items: "/etc/passwd"}, "escapes"},
		{"unknown param", dir, models.Spec{Kind: content.Kind, File: "tfidf.bin", Items: "vocab.txt", Params: map[string]any{"halflife": 1}}, "unknown params halflife"},
		{"bad param", dir, models.Spec{Kind: content.Kind, File: "tfidf.bin", Items: "vocab.txt", Params: map[string]any{"profile_terms": "many"}}, "profile_terms"},
		{"vocabulary mismatch", short, models.Spec{Kind: content.Kind, File: "tfidf.bin", Items: "vocab.txt"}, "vocabulary has"},
		{"not an artifact", dir, models.Spec{Kind: content.Kind, File: "vocab.txt", Items: "vocab.txt"}, "bad magic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := content.Build(context.Background(), models.Env{}, models.Version{Dir: tt.dir, Spec: tt.spec})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build() error = %v; want one containing %q", err, tt.want)
			}
		})
	}
}
