package userknn

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/vocab"
)

// stats accumulates co-rated pairs as a search does.
func stats(x, y []float64) *pairStats {
	var a pairStats
	for i := range x {
		a.add(x[i], y[i])
	}
	return &a
}

func TestPearson(t *testing.T) {
	logView := float64(damp(1, LogDamping)) // ln 2 as float32: constant, not 0
	tests := []struct {
		name string
		x, y []float64
		want float64
	}{
		{"perfect", []float64{1, 2, 3}, []float64{2, 4, 6}, 1},
		{"inverse", []float64{1, 2, 3}, []float64{3, 2, 1}, -1},
		// Centred: dx = (-1.5, -.5, .5, 1.5), dy = (-.5, -1.5, 1.5, .5):
		// Σdxdy = 3, Σdx² = Σdy² = 5, r = 3/5.
		{"hand", []float64{1, 2, 3, 4}, []float64{2, 1, 4, 3}, 0.6},
		// Means over the co-rated items only: (10, 12) and (1, 3) are
		// perfectly correlated whatever the users' other items.
		{"co-rated means", []float64{10, 12}, []float64{1, 3}, 1},
		// dx = (-1, 0, 1), dy = (1, -2, 1): Σdxdy = 0.
		{"uncorrelated", []float64{1, 2, 3}, []float64{2, 0, 2}, 0},
		{"constant x", []float64{2, 2, 2}, []float64{1, 2, 3}, 0},
		{"constant y", []float64{1, 2, 3}, []float64{5, 5, 5}, 0},
		{"constant log-damped views", []float64{logView, logView, logView, logView}, []float64{logView, 1.5, 2, 3}, 0},
		{"both constant", []float64{1, 1}, []float64{4, 4}, 0},
		{"one co-rated item", []float64{3}, []float64{5}, 0},
		{"none", nil, nil, 0},
	}
	for _, tt := range tests {
		got := stats(tt.x, tt.y).pearson()
		if math.IsNaN(got) || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: pearson(%v, %v) = %v; want %v", tt.name, tt.x, tt.y, got, tt.want)
		}
		if back := stats(tt.y, tt.x).pearson(); back != got {
			t.Errorf("%s: pearson(y, x) = %v; pearson(x, y) = %v, want equal", tt.name, back, got)
		}
	}
}

func TestSimilarity(t *testing.T) {
	hand := stats([]float64{1, 2, 3, 4}, []float64{2, 1, 4, 3}) // r = 0.6, n = 4
	one := stats([]float64{3}, []float64{5})
	tests := []struct {
		name      string
		a         *pairStats
		shrinkage float64
		minCommon int
		want      float32
	}{
		{"no shrinkage", hand, 0, 2, 0.6},
		{"γ=10: × 4/10", hand, 10, 2, 0.24},
		{"γ=4: × 1", hand, 4, 2, 0.6},
		{"γ=2: n above γ", hand, 2, 2, 0.6},
		{"below min_common", hand, 0, 5, 0},
		{"at min_common", hand, 0, 4, 0.6},
		{"one co-rated item, min_common 1", one, 10, 1, 0},
	}
	for _, tt := range tests {
		o := Options{Similarity: Pearson, Shrinkage: tt.shrinkage, MinCommon: tt.minCommon}
		if got := o.similarity(tt.a, 0, 0); math.Abs(float64(got-tt.want)) > 1e-6 {
			t.Errorf("%s: similarity = %v; want %v", tt.name, got, tt.want)
		}
	}
	// Cosine: Σxy over co-rated items / whole-vector norms: x = (1, 2) on
	// the co-rated items, ‖x‖ = 3, ‖y‖ = 2: (1·2 + 2·1)/6 = 2/3.
	o := Options{Similarity: Cosine, MinCommon: 1}
	if got := o.similarity(stats([]float64{1, 2}, []float64{2, 1}), 3, 2); math.Abs(float64(got)-2.0/3) > 1e-6 {
		t.Errorf("cosine similarity = %v; want 2/3", got)
	}
	if got := o.similarity(stats([]float64{1}, []float64{2}), 0, 2); got != 0 {
		t.Errorf("cosine similarity with a zero norm = %v; want 0", got)
	}
}

// TestPearsonSymmetricRandom checks bit-exact symmetry and the absence of
// NaN on random value vectors, many of them constant.
func TestPearsonSymmetricRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	levels := []float64{float64(damp(1, LogDamping)), float64(damp(4, LogDamping)), float64(damp(9, LogDamping))}
	for trial := range 2000 {
		n := 1 + r.IntN(8)
		x, y := make([]float64, n), make([]float64, n)
		for i := range n {
			x[i] = levels[r.IntN(1+trial%3)]
			y[i] = levels[r.IntN(3)]
		}
		a, b := stats(x, y).pearson(), stats(y, x).pearson()
		if a != b || math.IsNaN(a) || a < -1 || a > 1 {
			t.Fatalf("pearson(%v, %v) = %v, reversed %v; want equal, finite, in [-1, 1]", x, y, a, b)
		}
	}
}

func TestVectorizer(t *testing.T) {
	items, _ := vocab.New([]string{"a", "b", "c"})
	h := []dataset.Interaction{
		{ItemID: "c", Event: dataset.View},
		{ItemID: "a", Event: dataset.View},
		{ItemID: "ghost", Event: dataset.Purchase},
		{ItemID: "c", Event: dataset.Cart},
		{ItemID: "c", Event: dataset.Purchase},
		{ItemID: "b", Event: dataset.Rating, Value: 4},
		{ItemID: "b", Event: dataset.Rating, Value: math.NaN()},
	}
	tests := []struct {
		damping Damping
		want    []float32
	}{
		// a: view 1; b: rating 4 + NaN → not finite → 0; c: 1 + 3 + 5.
		{NoDamping, []float32{1, 0, 9}},
		{LogDamping, []float32{float32(math.Log(2)), 0, float32(math.Log(10))}},
	}
	for _, tt := range tests {
		o := DefaultOptions()
		o.Damping = tt.damping
		z := NewVectorizer(items, o)
		for range 2 { // a second call must not see the first's sums
			gi, gv := z.Vector(h)
			if !slices.Equal(gi, []int32{0, 1, 2}) || !slices.Equal(gv, tt.want) {
				t.Errorf("Vector(%s) = %v, %v; want [0 1 2], %v", tt.damping, gi, gv, tt.want)
			}
		}
	}
}

// handModel has users u (the query user), v1, v2, v3 over items a..e, no
// damping, and hand-set neighbours of u: v1 (0.5), v2 (0.25), v3 (0.25).
func handModel(t *testing.T) *Model {
	t.Helper()
	items, _ := vocab.New([]string{"a", "b", "c", "d", "e"})
	o := DefaultOptions()
	o.Damping = NoDamping
	users := []User{
		{ID: "u", Events: 2, Items: []int32{0, 1}, Values: []float32{1, 3}},        // mean 2
		{ID: "v1", Events: 3, Items: []int32{0, 2, 3}, Values: []float32{2, 5, 2}}, // mean 3
		{ID: "v2", Events: 2, Items: []int32{2, 4}, Values: []float32{0, 2}},       // mean 1
		{ID: "v3", Events: 3, Items: []int32{1, 3, 4}, Values: []float32{4, 4, 4}}, // mean 4
	}
	m, err := New(items, users, o)
	if err != nil {
		t.Fatal(err)
	}
	m, err = m.WithNeighbors([][]Neighbor{
		{{User: 1, Similarity: 0.5}, {User: 2, Similarity: 0.25}, {User: 3, Similarity: 0.25}},
		nil, nil, nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// knownQuery is a query that takes u's precomputed neighbours: the history
// only needs the stored number of events.
func knownQuery(user string, events int) models.Query {
	return models.Query{UserID: user, History: make([]dataset.Interaction, events), K: 10}
}

func TestPredict(t *testing.T) {
	m := handModel(t)
	// pred(u,i) = 2 + Σ sim·(x_vi − x̄_v) / Σ sim over neighbours with i:
	//   c: v1 (5−3), v2 (0−1): 2 + (0.5·2 − 0.25·1)/0.75 = 3
	//   d: v1 (2−3), v3 (4−4): 2 + (−0.5 + 0)/0.75 = 4/3
	//   e: v2 (2−1), v3 (4−4): 2 + (0.25 + 0)/0.5 = 2.5
	//   a: v1 (2−3): 2 − 1 = 1; b: v3 (4−4): 2
	//   unknown items and items no neighbour has: the mean, 2.
	got, err := m.Score(context.Background(), knownQuery("u", 2), []string{"c", "d", "e", "a", "b", "nope"})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{3, 4.0 / 3, 2.5, 1, 2, 2}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("Score = %v; want %v", got, want)
			break
		}
	}

	// Expected ranking: Σ_{v has i} sim·(2 + x_vi − x̄_v) / Σ sim (= 1):
	//   c: 0.5·4 + 0.25·1 = 2.25; d: 0.5·1 + 0.25·2 = 1; e: 0.25·3 + 0.25·2 = 1.25
	//   a: 0.5·1 = 0.5; b: 0.25·2 = 0.5 (tie: a first)
	recs, err := m.Recommend(context.Background(), knownQuery("u", 2))
	if err != nil {
		t.Fatal(err)
	}
	wantRecs := []models.Scored{{ItemID: "c", Score: 2.25}, {ItemID: "e", Score: 1.25}, {ItemID: "d", Score: 1}, {ItemID: "a", Score: 0.5}, {ItemID: "b", Score: 0.5}}
	if !scoredNear(recs, wantRecs) {
		t.Errorf("Recommend(expected) = %v; want %v", recs, wantRecs)
	}

	// Pred ranking: by pred itself.
	mp := m.clone()
	mp.opts.Ranking = Pred
	recs, err = mp.Recommend(context.Background(), knownQuery("u", 2))
	if err != nil {
		t.Fatal(err)
	}
	wantRecs = []models.Scored{{ItemID: "c", Score: 3}, {ItemID: "e", Score: 2.5}, {ItemID: "b", Score: 2}, {ItemID: "d", Score: 4.0 / 3}, {ItemID: "a", Score: 1}}
	if !scoredNear(recs, wantRecs) {
		t.Errorf("Recommend(pred) = %v; want %v", recs, wantRecs)
	}
}

func scoredNear(got, want []models.Scored) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].ItemID != want[i].ItemID || math.Abs(got[i].Score-want[i].Score) > 1e-9 {
			return false
		}
	}
	return true
}

func TestRecommendAllowAndK(t *testing.T) {
	m := handModel(t)
	ctx := context.Background()
	q := knownQuery("u", 2)
	seen := map[string]bool{"a": true, "b": true}
	q.Allow = func(id string) bool { return !seen[id] }
	q.K = 2
	got, err := m.Recommend(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if want := []models.Scored{{ItemID: "c", Score: 2.25}, {ItemID: "e", Score: 1.25}}; !scoredNear(got, want) {
		t.Errorf("Recommend(K=2, a and b seen) = %v; want %v", got, want)
	}
	q.Allow = func(string) bool { return false }
	if got, err := m.Recommend(ctx, q); err != nil || len(got) != 0 {
		t.Errorf("Recommend(nothing allowed) = %v, %v; want none", got, err)
	}
	for _, k := range []int{0, -1} {
		q := knownQuery("u", 2)
		q.K = k
		if got, err := m.Recommend(ctx, q); err != nil || len(got) != 0 {
			t.Errorf("Recommend(K=%d) = %v, %v; want none", k, got, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Recommend(cctx, knownQuery("u", 2)); err == nil {
		t.Error("Recommend(cancelled) = nil error; want context.Canceled")
	}
	if _, err := m.Score(cctx, knownQuery("u", 2), []string{"a"}); err == nil {
		t.Error("Score(cancelled) = nil error; want context.Canceled")
	}
}

// clusterModel is data with two taste groups: users l0..l5 shop the items
// l*, users r0..r5 the items r*. Within a side, items 0 and 1 are bought
// (view + purchase), item 2 viewed twice, items 3..5 viewed once, so a side's
// users agree on the value levels (Pearson is defined and positive); each
// user misses one item of the side and viewed one item of the other side.
func clusterModel(t *testing.T, o Options) (*Model, map[string][]dataset.Interaction) {
	t.Helper()
	hist := map[string][]dataset.Interaction{}
	var ids []string
	for _, side := range []string{"l", "r"} {
		other := map[string]string{"l": "r", "r": "l"}[side]
		for u := range 6 {
			uid := side + strconv.Itoa(u)
			ids = append(ids, uid)
			add := func(item string, ev dataset.Event) {
				hist[uid] = append(hist[uid], dataset.Interaction{UserID: uid, ItemID: item, Event: ev, Value: 1})
			}
			for i := range 6 {
				if (i+u)%6 == 5 {
					continue
				}
				item := side + "item" + strconv.Itoa(i)
				add(item, dataset.View)
				switch {
				case i < 2:
					add(item, dataset.Purchase)
				case i == 2:
					add(item, dataset.View)
				}
			}
			add(other+"item"+strconv.Itoa(u), dataset.View)
		}
	}
	slices.Sort(ids)
	var itemIDs []string
	for _, side := range []string{"l", "r"} {
		for i := range 6 {
			itemIDs = append(itemIDs, side+"item"+strconv.Itoa(i))
		}
	}
	items, err := vocab.New(itemIDs)
	if err != nil {
		t.Fatal(err)
	}
	z := NewVectorizer(items, o)
	users := make([]User, len(ids))
	for k, id := range ids {
		is, vs := z.Vector(hist[id])
		users[k] = User{ID: id, Events: len(hist[id]), Items: slices.Clone(is), Values: slices.Clone(vs)}
	}
	m, err := New(items, users, o)
	if err != nil {
		t.Fatal(err)
	}
	nb := make([][]Neighbor, m.Users())
	for u := range nb {
		nb[u] = m.NeighborsOf(int32(u))
	}
	if m, err = m.WithNeighbors(nb); err != nil {
		t.Fatal(err)
	}
	return m, hist
}

func TestOnlineUnknownUser(t *testing.T) {
	for _, sim := range []Similarity{Pearson, Cosine} {
		o := DefaultOptions()
		o.Similarity = sim
		o.Shrinkage = 3
		m, _ := clusterModel(t, o)
		// A new shopper who bought l0, viewed l2 twice and l3 once.
		q := models.Query{K: 3, History: []dataset.Interaction{
			{ItemID: "litem0", Event: dataset.View},
			{ItemID: "litem2", Event: dataset.View},
			{ItemID: "litem0", Event: dataset.Purchase},
			{ItemID: "litem3", Event: dataset.View},
			{ItemID: "litem2", Event: dataset.View},
			{ItemID: "unknown-item", Event: dataset.View},
		}}
		nb, online, err := m.Neighbors(context.Background(), q)
		if err != nil || !online || len(nb) == 0 {
			t.Fatalf("%s: Neighbors(new user) = %v, online %v, %v; want online neighbours", sim, nb, online, err)
		}
		for _, n := range nb {
			if id := m.UserID(n.User); id[0] != 'l' {
				t.Errorf("%s: Neighbors(new l shopper) includes %s (%v); want only l users", sim, id, n.Similarity)
			}
		}
		seen := map[string]bool{"litem0": true, "litem2": true, "litem3": true}
		q.Allow = func(id string) bool { return !seen[id] }
		recs, err := m.Recommend(context.Background(), q)
		if err != nil || len(recs) == 0 {
			t.Fatalf("%s: Recommend(new user) = %v, %v", sim, recs, err)
		}
		for _, r := range recs {
			if seen[r.ItemID] {
				t.Errorf("%s: Recommend returned seen item %s", sim, r.ItemID)
			}
		}
		// litem1 is bought by the l users who have it: it ranks first.
		if recs[0].ItemID != "litem1" {
			t.Errorf("%s: Recommend(new l shopper) = %v; want litem1 first", sim, recs)
		}
	}
}

// TestOnlineMatchesPrecomputed: a known user whose history changed only by
// events on items the model does not know has the same vector, so the online
// search (self excluded) must find exactly the precomputed neighbours.
func TestOnlineMatchesPrecomputed(t *testing.T) {
	for _, sim := range []Similarity{Pearson, Cosine} {
		o := DefaultOptions()
		o.Similarity = sim
		o.Neighbors = 4
		o.Shrinkage = 5
		m, hist := clusterModel(t, o)
		ctx := context.Background()
		for u := int32(0); u < int32(m.Users()); u++ {
			id := m.UserID(u)
			known := models.Query{UserID: id, History: hist[id]}
			pre, online, err := m.Neighbors(ctx, known)
			if err != nil || online {
				t.Fatalf("Neighbors(%s, training history) online = %v, %v; want precomputed", id, online, err)
			}
			changed := known
			changed.History = append(slices.Clone(hist[id]), dataset.Interaction{ItemID: "not-in-vocab", Event: dataset.View})
			on, online, err := m.Neighbors(ctx, changed)
			if err != nil || !online {
				t.Fatalf("Neighbors(%s, one more event) online = %v, %v; want online", id, online, err)
			}
			if !slices.Equal(pre, on) {
				t.Errorf("%s: %s: online neighbours %v; precomputed %v", sim, id, on, pre)
			}
			for _, n := range on {
				if n.User == u {
					t.Errorf("%s: %s is its own online neighbour", sim, id)
				}
			}
		}
	}
}

func TestEmptyAndColdQueries(t *testing.T) {
	m, _ := clusterModel(t, DefaultOptions())
	ctx := context.Background()
	for _, q := range []models.Query{
		{K: 5},
		{UserID: "stranger", K: 5},
		{UserID: "stranger", K: 5, History: []dataset.Interaction{{ItemID: "nothing-known", Event: dataset.View}}},
	} {
		recs, err := m.Recommend(ctx, q)
		if err != nil || len(recs) != 0 {
			t.Errorf("Recommend(%+v) = %v, %v; want none", q, recs, err)
		}
		scores, err := m.Score(ctx, q, []string{"litem0", "zzz"})
		if err != nil || !slices.Equal(scores, []float64{0, 0}) {
			t.Errorf("Score(%+v) = %v, %v; want [0 0]", q, scores, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	items, _ := vocab.New([]string{"a", "b"})
	o := DefaultOptions()
	tests := []struct {
		name  string
		users []User
	}{
		{"unsorted ids", []User{{ID: "b"}, {ID: "a"}}},
		{"duplicate ids", []User{{ID: "a"}, {ID: "a"}}},
		{"empty id", []User{{ID: ""}}},
		{"item out of range", []User{{ID: "a", Items: []int32{2}, Values: []float32{1}}}},
		{"negative item", []User{{ID: "a", Items: []int32{-1}, Values: []float32{1}}}},
		{"items not ascending", []User{{ID: "a", Items: []int32{1, 0}, Values: []float32{1, 1}}}},
		{"duplicate item", []User{{ID: "a", Items: []int32{1, 1}, Values: []float32{1, 1}}}},
		{"NaN value", []User{{ID: "a", Items: []int32{0}, Values: []float32{float32(math.NaN())}}}},
		{"Inf value", []User{{ID: "a", Items: []int32{0}, Values: []float32{float32(math.Inf(1))}}}},
		{"length mismatch", []User{{ID: "a", Items: []int32{0}}}},
		{"negative events", []User{{ID: "a", Events: -1}}},
	}
	for _, tt := range tests {
		if _, err := New(items, tt.users, o); err == nil {
			t.Errorf("New(%s) = nil error; want an error", tt.name)
		}
	}
	m, err := New(items, []User{{ID: "a", Items: []int32{0}, Values: []float32{1}}, {ID: "b", Items: []int32{0}, Values: []float32{2}}}, o)
	if err != nil {
		t.Fatal(err)
	}
	for name, nb := range map[string][][]Neighbor{
		"wrong length":  {nil},
		"self":          {{{User: 0, Similarity: 0.5}}, nil},
		"out of range":  {{{User: 2, Similarity: 0.5}}, nil},
		"zero sim":      {{{User: 1, Similarity: 0}}, nil},
		"sim above one": {{{User: 1, Similarity: 1.5}}, nil},
		"NaN sim":       {{{User: 1, Similarity: float32(math.NaN())}}, nil},
	} {
		if _, err := m.WithNeighbors(nb); err == nil {
			t.Errorf("WithNeighbors(%s) = nil error; want an error", name)
		}
	}
	if err := m.Save(&bytes.Buffer{}); err == nil {
		t.Error("Save(no neighbours) = nil error; want an error")
	}
}

func TestOptionsFromSpec(t *testing.T) {
	good := models.Spec{Params: map[string]any{
		"similarity": "cosine", "shrinkage": 0, "min_common": "3", "neighbors": 20.0,
		"damping": "none", "event_weights": "view:2", "ranking": "pred",
	}}
	o, err := OptionsFromSpec(good)
	if err != nil {
		t.Fatal(err)
	}
	if o.Similarity != Cosine || o.Shrinkage != 0 || o.MinCommon != 3 || o.Neighbors != 20 ||
		o.Damping != NoDamping || o.Weights[dataset.View] != 2 || o.Ranking != Pred {
		t.Errorf("OptionsFromSpec(%v) = %+v", good.Params, o)
	}
	back, err := OptionsFromSpec(models.Spec{Params: o.Params()})
	if err != nil || back.Similarity != o.Similarity || back.Weights.String() != o.Weights.String() {
		t.Errorf("OptionsFromSpec(Params()) = %+v, %v; want %+v", back, err, o)
	}
	for _, bad := range []map[string]any{
		{"similarity": "jaccard"},
		{"damping": "sqrt"},
		{"ranking": "random"},
		{"shrinkage": -1},
		{"shrinkage": "NaN"},
		{"min_common": 0},
		{"min_common": 1.5},
		{"neighbors": 0},
		{"neighbors": 1e9},
		{"event_weights": "view:-1"},
		{"event_weights": 3},
		{"similarity": 3},
	} {
		if _, err := OptionsFromSpec(models.Spec{Params: bad}); err == nil {
			t.Errorf("OptionsFromSpec(%v) = nil error; want an error", bad)
		}
	}
}

// TestConcurrent runs Recommend and Score from many goroutines on one model
// (pooled scratch space) and compares with serial answers; run with -race.
func TestConcurrent(t *testing.T) {
	m, hist := clusterModel(t, DefaultOptions())
	ctx := context.Background()
	var qs []models.Query
	for _, id := range []string{"l0", "l3", "r1", "r5"} {
		h := hist[id]
		qs = append(qs, models.Query{UserID: id, History: h, K: 4}, models.Query{History: h[:3], K: 4})
	}
	type answer struct {
		recs   []models.Scored
		scores []float64
	}
	items := []string{"litem1", "ritem4", "nope"}
	want := make([]answer, len(qs))
	for i, q := range qs {
		want[i].recs, _ = m.Recommend(ctx, q)
		want[i].scores, _ = m.Score(ctx, q, items)
	}
	errs := make(chan string, 8)
	for g := range 8 {
		go func() {
			var bad string
			for n := range 200 {
				i := (g + n) % len(qs)
				recs, err1 := m.Recommend(ctx, qs[i])
				scores, err2 := m.Score(ctx, qs[i], items)
				if err1 != nil || err2 != nil || !slices.Equal(recs, want[i].recs) || !slices.Equal(scores, want[i].scores) {
					bad = "concurrent answer differs from the serial one for query " + strconv.Itoa(i)
					break
				}
			}
			errs <- bad
		}()
	}
	for range 8 {
		if bad := <-errs; bad != "" {
			t.Error(bad)
		}
	}
}
