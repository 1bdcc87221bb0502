package trainer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/itemknn"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/eval"
	"github.com/recserve/recserve/training/split"
)

// knnTiny has four users and three items; with the default event weights and
// no damping the user × item values are
//
//	     a  b  c
//	u1   1  1  .
//	u2   3  1  1
//	u3   .  5  1
//	u4   5  5  1
func knnTiny() *dataset.Dataset {
	in := func(u, i string, e dataset.Event, ts int64) dataset.Interaction {
		return dataset.Interaction{UserID: u, ItemID: i, Event: e, Value: 1, Timestamp: ts}
	}
	return &dataset.Dataset{Interactions: []dataset.Interaction{
		in("u1", "a", dataset.View, 1), in("u1", "b", dataset.View, 2),
		in("u2", "a", dataset.Cart, 3), in("u2", "b", dataset.View, 4), in("u2", "c", dataset.View, 5),
		in("u3", "b", dataset.Purchase, 6), in("u3", "c", dataset.View, 7),
		in("u4", "a", dataset.Purchase, 8), in("u4", "b", dataset.Purchase, 9), in("u4", "c", dataset.View, 10),
	}}
}

// knnSims returns every stored similarity of m, keyed "i-j".
func knnSims(t *testing.T, m *itemknn.Model) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, id := range m.Items().IDs() {
		nbs, err := m.SimilarItems(context.Background(), models.SimilarQuery{ItemID: id, K: m.Items().Len()})
		if err != nil {
			t.Fatal(err)
		}
		for _, nb := range nbs {
			out[id+"-"+nb.ItemID] = nb.Score
		}
	}
	return out
}

// sym lists both orientations of each pair.
func sym(pairs map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range pairs {
		i, j, _ := strings.Cut(k, "-")
		out[i+"-"+j], out[j+"-"+i] = v, v
	}
	return out
}

func TestFitItemKNNSimilarities(t *testing.T) {
	sqrt := math.Sqrt
	// Norms² (no damping): a 1+9+25 = 35, b 1+1+25+25 = 52, c 1+1+1 = 3;
	// dots: ab 1+3+25 = 29, ac 3+5 = 8, bc 1+5+5 = 11; common users: ab 3,
	// ac 2, bc 3.
	cosAB, cosAC, cosBC := 29/sqrt(35*52), 8/sqrt(35*3), 11/sqrt(52*3)
	// log(1+x) values: a (ln2, ln4, ., ln6), b (ln2, ln2, ln6, ln6), c (., ln2, ln2, ln2).
	l2, l4, l6 := math.Log(2), math.Log(4), math.Log(6)
	na, nb, nc := l2*l2+l4*l4+l6*l6, 2*l2*l2+2*l6*l6, 3*l2*l2
	tests := []struct {
		name string
		o    ItemKNNOptions
		want map[string]float64
	}{
		{"cosine", ItemKNNOptions{Damping: itemknn.NoDamping},
			sym(map[string]float64{"a-b": cosAB, "a-c": cosAC, "b-c": cosBC})},
		{"cosine, log damping", ItemKNNOptions{},
			sym(map[string]float64{
				"a-b": (l2*l2 + l4*l2 + l6*l6) / sqrt(na*nb),
				"a-c": (l4*l2 + l6*l2) / sqrt(na*nc),
				"b-c": (l2*l2 + l6*l2 + l6*l2) / sqrt(nb*nc),
			})},
		// Users' means 1, 5/3, 3, 11/3; centred a (0, 4/3, ., 4/3), b (0,
		// -2/3, 2, 4/3), c (., -2/3, -2, -8/3): a·b = 8/9 over norms² 32/9
		// and 56/9; a·c = -40/9 and b·c = -64/9 are negative, so dropped.
		{"adjusted cosine", ItemKNNOptions{Similarity: itemknn.AdjustedCosine, Damping: itemknn.NoDamping},
			sym(map[string]float64{"a-b": (8.0 / 9) / sqrt(32.0/9*56.0/9)})},
		// Users: a {1,2,4}, b {1,2,3,4}, c {2,3,4}.
		{"jaccard", ItemKNNOptions{Similarity: itemknn.Jaccard},
			sym(map[string]float64{"a-b": 3.0 / 4, "a-c": 2.0 / 4, "b-c": 3.0 / 4})},
		// d² = ‖x_i‖² + ‖x_j‖² - 2 x_i·x_j: ab 35+52-58, ac 35+3-16, bc 52+3-22.
		{"euclidean", ItemKNNOptions{Similarity: itemknn.Euclidean, Damping: itemknn.NoDamping},
			sym(map[string]float64{"a-b": 1 / (1 + sqrt(29)), "a-c": 1 / (1 + sqrt(22)), "b-c": 1 / (1 + sqrt(33))})},
		{"shrinkage 1", ItemKNNOptions{Damping: itemknn.NoDamping, Shrinkage: 1},
			sym(map[string]float64{"a-b": cosAB * 3 / 4, "a-c": cosAC * 2 / 3, "b-c": cosBC * 3 / 4})},
		{"min_common 3", ItemKNNOptions{Damping: itemknn.NoDamping, MinCommon: 3},
			sym(map[string]float64{"a-b": cosAB, "b-c": cosBC})},
		// Each user keeps the latest item only: no pair has a common user.
		{"max_user_items 1", ItemKNNOptions{Damping: itemknn.NoDamping, MaxUserItems: 1}, map[string]float64{}},
		// Purchases count nothing: u3 and u4 drop their purchases, so
		// a (1, 3, ., .), b (1, 1, ., .), c (., 1, 1, 1).
		{"event weights", ItemKNNOptions{Damping: itemknn.NoDamping, Weights: models.EventWeights{dataset.View: 1, dataset.Cart: 3}},
			sym(map[string]float64{"a-b": 4 / sqrt(10*2), "a-c": 3 / sqrt(10*3), "b-c": 1 / sqrt(2*3)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Neighbors = 10
			m, err := FitItemKNN(context.Background(), knnTiny(), tt.o)
			if err != nil {
				t.Fatal(err)
			}
			got := knnSims(t, m)
			if len(got) != len(tt.want) {
				t.Errorf("similarities = %v; want %v", got, tt.want)
			}
			for pair, want := range tt.want {
				if g, ok := got[pair]; !ok || math.Abs(g-want) > 1e-6 {
					t.Errorf("sim(%s) = %v (present %v); want %v", pair, g, ok, want)
				}
			}
		})
	}
}

func TestFitItemKNNSymmetric(t *testing.T) {
	d, err := datagen.Generate(datagen.Config{Users: 300, Items: 120})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range itemknn.Similarities() {
		t.Run(string(s), func(t *testing.T) {
			// Neighbours unbounded, so every pair appears from both sides.
			m, err := FitItemKNN(context.Background(), d, ItemKNNOptions{Similarity: s, Neighbors: 1000})
			if err != nil {
				t.Fatal(err)
			}
			n := int32(m.Items().Len())
			sims := map[[2]int32]float32{}
			for i := range n {
				for _, nb := range m.Neighbors(i) {
					sims[[2]int32{i, nb.Index}] = nb.Sim
				}
			}
			if len(sims) == 0 {
				t.Fatal("no similarities")
			}
			for p, s := range sims {
				if back, ok := sims[[2]int32{p[1], p[0]}]; !ok || back != s {
					t.Fatalf("sim(%d,%d) = %v but sim(%d,%d) = %v (present %v); want equal", p[0], p[1], s, p[1], p[0], back, ok)
				}
			}
		})
	}
}

func TestFitItemKNNTies(t *testing.T) {
	// One user viewed x, y and z: every pair has similarity 1.
	d := &dataset.Dataset{}
	for i, id := range []string{"z", "x", "y"} {
		d.Interactions = append(d.Interactions, dataset.Interaction{UserID: "u", ItemID: id, Event: dataset.View, Value: 1, Timestamp: int64(i)})
	}
	for _, nbrs := range []int{1, 2} {
		m, err := FitItemKNN(context.Background(), d, ItemKNNOptions{Neighbors: nbrs})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{"x": {"y", "z"}, "y": {"x", "z"}, "z": {"x", "y"}}
		for id, w := range want {
			got, _ := m.SimilarItems(context.Background(), models.SimilarQuery{ItemID: id, K: 5})
			var ids []string
			for _, s := range got {
				ids = append(ids, s.ItemID)
			}
			if !reflect.DeepEqual(ids, w[:nbrs]) {
				t.Errorf("neighbors=%d: SimilarItems(%s) = %v; want %v", nbrs, id, ids, w[:nbrs])
			}
		}
	}
}

func TestFitItemKNNDeterministic(t *testing.T) {
	d, err := datagen.Generate(datagen.Config{Users: 500, Items: 200})
	if err != nil {
		t.Fatal(err)
	}
	save := func(o ItemKNNOptions) []byte {
		m, err := FitItemKNN(context.Background(), d, o)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := m.Save(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, s := range itemknn.Similarities() {
		o := DefaultItemKNNOptions()
		o.Similarity = s
		o.Workers = 1
		want := save(o)
		for _, workers := range []int{1, 2, 3, 8} {
			o.Workers = workers
			if got := save(o); !bytes.Equal(got, want) {
				t.Errorf("%s: artifact with %d workers differs from 1 worker", s, workers)
			}
		}
		o.Workers = 0
		prev := runtime.GOMAXPROCS(1)
		got := save(o)
		runtime.GOMAXPROCS(prev)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: artifact with GOMAXPROCS=1 differs", s)
		}
	}
}

// TestFitItemKNNDeterministicShards uses enough interactions (about 175k) for
// indexInteractions to split them into shards.
func TestFitItemKNNDeterministicShards(t *testing.T) {
	d, err := datagen.Generate(datagen.Config{Users: 3000, Items: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Interactions) < 3*50000 {
		t.Fatalf("%d interactions: too few for three shards", len(d.Interactions))
	}
	var want []byte
	for _, workers := range []int{1, 2, 3} {
		o := DefaultItemKNNOptions()
		o.Workers = workers
		m, err := FitItemKNN(context.Background(), d, o)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := m.Save(&buf); err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = buf.Bytes()
		} else if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("artifact with %d workers differs from 1 worker", workers)
		}
	}
}

func TestFitItemKNNErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FitItemKNN(ctx, knnTiny(), DefaultItemKNNOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("FitItemKNN(canceled) error = %v; want context.Canceled", err)
	}
	if _, err := FitItemKNN(context.Background(), &dataset.Dataset{}, DefaultItemKNNOptions()); err == nil {
		t.Error("FitItemKNN(no interactions) = nil error; want an error")
	}
	bad := []ItemKNNOptions{
		{Neighbors: 0},
		{Neighbors: 5, Similarity: "pearson"},
		{Neighbors: 5, Shrinkage: -1},
		{Neighbors: 5, Shrinkage: math.NaN()},
		{Neighbors: 5, MaxUserItems: -1},
		{Neighbors: 5, Damping: "sqrt"},
	}
	for _, o := range bad {
		if _, err := FitItemKNN(context.Background(), knnTiny(), o); err == nil {
			t.Errorf("FitItemKNN(%+v) = nil error; want an error", o)
		}
	}
}

func TestParseItemKNNParams(t *testing.T) {
	good := []struct {
		p    Params
		want func(*ItemKNNOptions)
	}{
		{Params{}, func(*ItemKNNOptions) {}},
		{Params{"similarity": "jaccard", "neighbors": "20", "min_common": "2", "shrinkage": "0",
			"max_user_items": "0", "damping": "none", "event_weights": "view:2", "half_life_days": "3"},
			func(o *ItemKNNOptions) {
				o.Similarity, o.Neighbors, o.MinCommon, o.Shrinkage = itemknn.Jaccard, 20, 2, 0
				o.MaxUserItems, o.Damping, o.HalfLifeDays = 0, itemknn.NoDamping, 3
				o.Weights = models.EventWeights{dataset.View: 2, dataset.Cart: 3, dataset.Purchase: 5, dataset.Rating: 1}
			}},
	}
	for _, tt := range good {
		got, err := parseItemKNNParams(tt.p)
		if err != nil {
			t.Fatalf("parseItemKNNParams(%v) error = %v", tt.p, err)
		}
		want := DefaultItemKNNOptions()
		tt.want(&want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parseItemKNNParams(%v) = %+v; want %+v", tt.p, got, want)
		}
	}
	bad := []struct {
		p    Params
		want string
	}{
		{Params{"k": "10"}, "unknown params [k]"},
		{Params{"similarity": "pearson"}, "similarity"},
		{Params{"neighbors": "0"}, "neighbors"},
		{Params{"neighbors": "many"}, "neighbors"},
		{Params{"min_common": "0"}, "min_common"},
		{Params{"max_user_items": "-1"}, "max_user_items"},
		{Params{"shrinkage": "-2"}, "shrinkage"},
		{Params{"shrinkage": "NaN"}, "shrinkage"},
		{Params{"half_life_days": "Inf"}, "half_life_days"},
		{Params{"damping": "sqrt"}, "damping"},
		{Params{"event_weights": "click:1"}, "click"},
	}
	for _, tt := range bad {
		if _, err := parseItemKNNParams(tt.p); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseItemKNNParams(%v) error = %v; want one containing %q", tt.p, err, tt.want)
		}
	}
}

// TestRunItemKNN trains through Run, as `recctl train itemknn` does, and
// builds the version directory back.
func TestRunItemKNN(t *testing.T) {
	data := t.TempDir()
	if err := dataset.Write(data, knnTiny()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "itemknn", "1")
	spec, err := Run(context.Background(), Job{Kind: "itemknn", DataDir: data, Out: out,
		Params: Params{"damping": "none", "half_life_days": "2", "shrinkage": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if spec.File != itemknn.DefaultFile || spec.Items != "items.txt" || spec.Params["similarity"] != "cosine" {
		t.Errorf("spec = %+v; want file itemknn.bin, items items.txt, similarity cosine", spec)
	}
	read, err := models.ReadSpec(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := itemknn.Build(context.Background(), models.Env{}, models.Version{Name: "itemknn", ID: "1", Dir: out, Spec: read})
	if err != nil {
		t.Fatal(err)
	}
	km := m.(*itemknn.Model)
	if o := km.Options(); o.Damping != itemknn.NoDamping || o.HalfLifeDays != 2 {
		t.Errorf("built options = %+v; want no damping, half-life 2", o)
	}
	got := knnSims(t, km)
	if want := 11 / math.Sqrt(52*3); math.Abs(got["b-c"]-want) > 1e-6 {
		t.Errorf("sim(b-c) after Run and Build = %v; want %v", got["b-c"], want)
	}
	if _, err := Run(context.Background(), Job{Kind: "itemknn", DataDir: data, Out: out + "x", Params: Params{"neighbours": "5"}}); err == nil || !strings.Contains(err.Error(), "unknown params") {
		t.Errorf("Run(misspelt param) error = %v; want unknown params", err)
	}
}

// TestItemKNNAccuracy pins the offline metric on the demo data's time split,
// through the evaluator (the router, as the server runs it): itemknn must
// beat global popularity's NDCG@10 by 1.5× at least. Measured 0.194
// (popularity 0.027, per-category popularity 0.161).
func TestItemKNNAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("trains and evaluates on the demo data set")
	}
	d, err := datagen.Generate(datagen.Config{})
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := split.Split(d, split.Options{Method: split.Time, TestFrac: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	trainDir, testDir, repo := filepath.Join(dir, "train"), filepath.Join(dir, "test"), filepath.Join(dir, "repo")
	if err := dataset.Write(trainDir, train); err != nil {
		t.Fatal(err)
	}
	if err := dataset.Write(testDir, test); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, kind := range []string{"popularity", "itemknn"} {
		if _, err := Run(ctx, Job{Kind: kind, DataDir: trainDir, Out: filepath.Join(repo, kind, "1")}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := eval.Run(ctx, eval.Options{Repo: repo, Train: trainDir, Test: testDir, K: 10})
	if err != nil {
		t.Fatal(err)
	}
	ndcg := map[string]float64{}
	for _, r := range rep.Results {
		ndcg[r.Model] = r.NDCG
	}
	t.Logf("NDCG@10: %v", ndcg)
	if ndcg["itemknn"] < 1.5*ndcg["popularity"] {
		t.Errorf("NDCG@10(itemknn) = %.4f; want ≥ 1.5 × popularity's %.4f", ndcg["itemknn"], ndcg["popularity"])
	}
	if got, want := ndcg["itemknn"], 0.194; math.Abs(got-want) > 0.01 {
		t.Errorf("NDCG@10(itemknn) = %.4f; want %.3f ± 0.01 (pinned; update it if a change is intended)", got, want)
	}
}

func BenchmarkFitItemKNN(b *testing.B) {
	for _, size := range []struct{ users, items int }{{5000, 2000}, {50000, 20000}} {
		b.Run(fmt.Sprintf("users=%d/items=%d", size.users, size.items), func(b *testing.B) {
			d, err := datagen.Generate(datagen.Config{Users: size.users, Items: size.items})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			o := DefaultItemKNNOptions()
			for b.Loop() {
				if _, err := FitItemKNN(context.Background(), d, o); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(d.Interactions)), "events")
		})
	}
}
