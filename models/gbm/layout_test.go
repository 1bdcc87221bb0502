package gbm

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randTree is a random XGBoost JSON tree, node ids in depth-first order
// (XGBoost's own are breadth-first; the loader must not depend on it).
type randTree struct {
	left, right []int
	feat        []int
	cond        []float64
	defLeft     []int
}

// grow adds a random subtree at depth and returns its root's id; a node
// above maxDepth splits with probability pSplit (the root always does).
func (t *randTree) grow(r *rand.Rand, depth, maxDepth, nf int, thresholds []float64, pSplit float64) int {
	id := len(t.left)
	t.left, t.right = append(t.left, -1), append(t.right, -1)
	t.feat, t.defLeft = append(t.feat, 0), append(t.defLeft, 0)
	// Leaves get distinct-looking values; splits use few thresholds, so
	// rows often tie with them.
	t.cond = append(t.cond, math.Round(r.NormFloat64()*1000)/997)
	if depth < maxDepth && (depth == 0 || r.Float64() < pSplit) {
		t.feat[id] = r.IntN(nf)
		t.cond[id] = thresholds[r.IntN(len(thresholds))]
		t.defLeft[id] = r.IntN(2)
		l := t.grow(r, depth+1, maxDepth, nf, thresholds, pSplit)
		t.left[id] = l
		t.right[id] = t.grow(r, depth+1, maxDepth, nf, thresholds, pSplit)
	}
	return id
}

// walk is the reference traversal, straight from XGBoost's definition.
func (t *randTree) walk(x []float64) float32 {
	i := 0
	for t.left[i] != -1 {
		f := t.feat[i]
		var goLeft bool
		if f < len(x) && !math.IsNaN(x[f]) {
			goLeft = float32(x[f]) < float32(t.cond[i])
		} else {
			goLeft = t.defLeft[i] == 1
		}
		if goLeft {
			i = t.left[i]
		} else {
			i = t.right[i]
		}
	}
	return float32(t.cond[i])
}

type randModel struct {
	trees   []randTree
	groups  []int
	weights []float64 // nil unless dart
	base    float32   // base margin
	ng, nf  int
}

func newRandModel(r *rand.Rand, nTrees, ng, nf, maxDepth int, dart bool) *randModel {
	thresholds := []float64{-1.5, -0.25, 0, 0.5, 1, 2.75, 1e30, -1e-30}
	m := &randModel{ng: ng, nf: nf, base: 0.5}
	for i := range nTrees {
		var t randTree
		t.grow(r, 0, 1+r.IntN(maxDepth), nf, thresholds, 0.8)
		m.trees = append(m.trees, t)
		m.groups = append(m.groups, i%ng)
		if dart {
			m.weights = append(m.weights, []float64{1, 0.5, 0.8333333333, 1.25}[r.IntN(4)])
		}
	}
	return m
}

func (m *randModel) json(objective string) string {
	type jt struct {
		L  []int     `json:"left_children"`
		R  []int     `json:"right_children"`
		F  []int     `json:"split_indices"`
		C  []float64 `json:"split_conditions"`
		D  []int     `json:"default_left"`
		TP any       `json:"tree_param"`
	}
	var trees []jt
	for _, t := range m.trees {
		trees = append(trees, jt{t.left, t.right, t.feat, t.cond, t.defLeft,
			map[string]string{"num_nodes": fmt.Sprint(len(t.left)), "size_leaf_vector": "0"}})
	}
	gb := map[string]any{
		"gbtree_model_param": map[string]string{"num_trees": fmt.Sprint(len(trees)), "num_parallel_tree": "1"},
		"trees":              trees, "tree_info": m.groups,
	}
	booster := map[string]any{"name": "gbtree", "model": gb}
	if m.weights != nil {
		booster = map[string]any{"name": "dart", "gbtree": booster, "weight_drop": m.weights}
	}
	nc := "0"
	if m.ng > 1 {
		nc = fmt.Sprint(m.ng)
	}
	b, err := json.Marshal(map[string]any{"learner": map[string]any{
		"learner_model_param": map[string]string{"base_score": "0.5", "num_class": nc, "num_feature": fmt.Sprint(m.nf)},
		"objective":           map[string]string{"name": objective},
		"gradient_booster":    booster,
	}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// margins is the reference: base margin plus each tree's (weighted) leaf,
// summed in float32 in tree order.
func (m *randModel) margins(x []float64) []float32 {
	out := make([]float32, m.ng)
	for g := range out {
		out[g] = m.base
	}
	for i := range m.trees {
		v := m.trees[i].walk(x)
		if m.weights != nil {
			v = float32(v * float32(m.weights[i]))
		}
		out[m.groups[i]] += v
	}
	return out
}

func randRows(r *rand.Rand, n, nf int) [][]float64 {
	vals := []float64{-1.5, -0.25, 0, math.Copysign(0, -1), 0.5, 1, 2.75, 1e30, -1e-30, 7,
		math.Inf(1), math.Inf(-1), 1e300, -1e300}
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, nf)
		for f := range rows[i] {
			switch p := r.Float64(); {
			case p < 0.15:
				rows[i][f] = math.NaN()
			case p < 0.6:
				rows[i][f] = vals[r.IntN(len(vals))]
			default:
				rows[i][f] = math.Round(r.NormFloat64()*4) / 4 // often equal to a threshold
			}
		}
	}
	return rows
}

// TestLayoutsMatchReference checks both tree layouts (perfect for shallow
// models, general for deep ones) bit for bit against a direct traversal of
// the JSON trees, with missing values on both default sides, ties with
// thresholds, infinities, short rows, several output groups and DART
// weights, through Predict, PredictMargin, PredictMulti and PredictBatch
// with batch sizes around the block and lockstep widths.
func TestLayoutsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		maxDepth, trees, groups int
		dart, perfect           bool
	}{
		{1, 1, 1, false, true},
		{3, 7, 1, false, true},
		{6, 37, 1, false, true},
		{6, 50, 3, false, true},
		{5, 29, 1, true, true},
		{10, 9, 2, true, true},
		{14, 11, 1, false, false},
		{13, 13, 3, true, false},
	} {
		name := fmt.Sprintf("depth%d_trees%d_groups%d_dart%v", tc.maxDepth, tc.trees, tc.groups, tc.dart)
		t.Run(name, func(t *testing.T) {
			const nf = 7
			rm := newRandModel(r, tc.trees, tc.groups, nf, tc.maxDepth, tc.dart)
			if tc.maxDepth > maxPerfectDepth {
				rm.trees[0] = randTree{} // make sure one tree is deeper than the limit
				for rm.trees[0].grow(r, 0, tc.maxDepth, nf, []float64{0}, 0.8); depthOf(&rm.trees[0], 0) <= maxPerfectDepth; {
					rm.trees[0] = randTree{}
					rm.trees[0].grow(r, 0, tc.maxDepth, nf, []float64{0}, 0.8)
				}
			}
			objs := []string{"reg:squarederror", "binary:logistic"}
			if tc.groups > 1 {
				objs = []string{"multi:softmax", "multi:softprob"}
			}
			rows := randRows(r, 203, nf)
			for _, obj := range objs {
				rm.base = 0.5 // base_score 0.5 as a margin
				if obj == "binary:logistic" {
					rm.base = 0 // logit(0.5)
				}
				m, err := LoadXGBoostJSON(strings.NewReader(rm.json(obj)))
				if err != nil {
					t.Fatal(err)
				}
				if m.perfect != tc.perfect {
					t.Fatalf("perfect layout = %v; want %v", m.perfect, tc.perfect)
				}
				checkReference(t, rm, m, obj, rows)
				if tc.perfect { // the general layout too
					m, err := loadGeneral(strings.NewReader(rm.json(obj)))
					if err != nil {
						t.Fatal(err)
					}
					checkReference(t, rm, m, obj, rows)
				}
			}
		})
	}
}

func checkReference(t *testing.T, rm *randModel, m *XGBoost, obj string, rows [][]float64) {
	t.Helper()
	nf := rm.nf
	no := m.NumOutputs()
	single := make([]float64, no)
	for i, x := range rows {
		want := rm.margins(x)
		if rm.ng == 1 {
			if got := m.PredictMargin(x); got != float64(want[0]) {
				t.Fatalf("row %d %v: PredictMargin = %v; reference %v", i, x, got, want[0])
			}
			// Short rows: the missing tail follows default_left.
			short := x[:i%nf]
			if got, want := m.PredictMargin(short), rm.margins(short)[0]; got != float64(want) {
				t.Fatalf("row %d %v: PredictMargin = %v; reference %v", i, short, got, want)
			}
		}
		got := make([]float32, m.numGroups)
		m.margins(x, got)
		for g := range got {
			if math.Float32bits(got[g]) != math.Float32bits(want[g]) {
				t.Fatalf("row %d group %d: margin %v; reference %v", i, g, got[g], want[g])
			}
		}
		m.PredictMulti(x, single)
		if obj == "multi:softmax" && single[0] != float64(argmax(want)) {
			t.Fatalf("row %d: multi:softmax class %v; reference %d", i, single[0], argmax(want))
		}
	}
	for _, n := range []int{1, 3, 4, 8, 9, 63, 64, 65, 130, len(rows)} {
		xs := make([]float64, 0, n*nf)
		for _, x := range rows[:n] {
			xs = append(xs, x...)
		}
		batch := make([]float64, n*no)
		if err := m.PredictBatch(xs, batch); err != nil {
			t.Fatal(err)
		}
		for i, x := range rows[:n] {
			m.PredictMulti(x, single)
			for c := range no {
				if b, s := batch[i*no+c], single[c]; math.Float64bits(b) != math.Float64bits(s) {
					t.Fatalf("%s batch %d row %d output %d: PredictBatch %v; PredictMulti %v", obj, n, i, c, b, s)
				}
			}
		}
	}
}

func depthOf(t *randTree, i int) int {
	if t.left[i] == -1 {
		return 0
	}
	return 1 + max(depthOf(t, t.left[i]), depthOf(t, t.right[i]))
}

func argmax(v []float32) int {
	best := 0
	for g, x := range v {
		if x > v[best] {
			best = g
		}
	}
	return best
}

// TestWideRows covers rows wider than Predict's stack buffer.
func TestWideRows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const nf = 3 * rowBuf
	rm := newRandModel(r, 20, 1, nf, 6, false)
	m, err := LoadXGBoostJSON(strings.NewReader(rm.json("reg:squarederror")))
	if err != nil {
		t.Fatal(err)
	}
	if m.rowLen <= rowBuf {
		t.Fatalf("row vector of %d slots fits the stack buffer; want a wider model", m.rowLen)
	}
	rows := randRows(r, 70, nf)
	xs := make([]float64, 0, len(rows)*nf)
	for _, x := range rows {
		xs = append(xs, x...)
	}
	batch := make([]float64, len(rows))
	if err := m.PredictBatch(xs, batch); err != nil {
		t.Fatal(err)
	}
	for i, x := range rows {
		want := float64(rm.margins(x)[0])
		if got := m.PredictMargin(x); got != want || batch[i] != want {
			t.Fatalf("row %d: PredictMargin %v, PredictBatch %v; reference %v", i, got, batch[i], want)
		}
	}
}

// TestRowVectorSize checks that the row vector covers the features split
// on, not num_feature, which a model file may set arbitrarily high.
func TestRowVectorSize(t *testing.T) {
	js := `{"learner":{"learner_model_param":{"base_score":"0","num_feature":"2000000000"},
 "objective":{"name":"reg:squarederror"},
 "gradient_booster":{"name":"gbtree","model":{"gbtree_model_param":{"num_trees":"1"},"tree_info":[0],
  "trees":[{"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[1,0,0],
   "split_conditions":[0.5,-1,2],"default_left":[1,0,0]}]}}}}`
	m, err := LoadXGBoostJSON(strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	if m.rowLen != 4 {
		t.Errorf("rowLen = %d; want 4 (features 0 and 1)", m.rowLen)
	}
	x := []float64{9, 1}
	if n := testing.AllocsPerRun(10, func() { m.Predict(x) }); n != 0 {
		t.Errorf("Predict allocates %v times; want 0", n)
	}
	if got := m.Predict(x); got != 2 {
		t.Errorf("Predict = %v; want 2", got)
	}
	if got := m.Predict([]float64{9}); got != -1 { // missing goes left
		t.Errorf("Predict = %v; want -1", got)
	}
}
