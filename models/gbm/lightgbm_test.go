package gbm_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/recserve/recserve/models/gbm"
)

// The models in testdata/lightgbm are hand-written in LightGBM's text format
// and every expected value below is derived by walking their trees by hand.
// LightGBM's rules (include/LightGBM/tree.h):
//
//   - numerical: a NaN whose missing type is not NaN becomes 0; then if
//     (missing Zero and |v| <= 1e-35) or (missing NaN and v is NaN) go to
//     the default side, else left iff v <= threshold;
//   - categorical: NaN or int(v) < 0 goes right, else left iff bit int(v)
//     is set in the split's bitset;
//   - decision_type: bit 0 categorical, bit 1 default left, bits 2-3 missing
//     type (0 None, 1 Zero, 2 NaN); so 2 = None/left, 4 = Zero/right,
//     8 = NaN/right, 10 = NaN/left.

var lgbNaN = math.NaN()

const lgbTol = 1e-12

func lgbSigmoid(k, m float64) float64 { return 1 / (1 + math.Exp(-k*m)) }

func lgbSoftmax3(a, b, c float64) []float64 {
	hi := max(a, b, c)
	ea, eb, ec := math.Exp(a-hi), math.Exp(b-hi), math.Exp(c-hi)
	s := ea + eb + ec
	return []float64{ea / s, eb / s, ec / s}
}

func readLGB(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "lightgbm", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadLGB(t testing.TB, name string) *gbm.LightGBM {
	t.Helper()
	m, err := gbm.LoadLightGBM(bytes.NewReader(readLGB(t, name)))
	if err != nil {
		t.Fatalf("LoadLightGBM(%s): %v", name, err)
	}
	return m
}

func lgbClose(got, want float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	return math.Abs(got-want) <= lgbTol*max(1, math.Abs(want))
}

// binary.txt (v4, objective binary sigmoid:2, features age=f0, income=f1):
//
//	Tree 0: node0 f0 <= 0.5, dt 10 (NaN missing, default left)
//	          left leaf0 -0.4, right node1
//	        node1 f1 <= 2, dt 4 (Zero missing, default right)
//	          left leaf1 0.2, right leaf2 0.6
//	Tree 1: node0 f1 <= -1, dt 0 (None missing: NaN -> 0)
//	          left leaf0 0.15, right leaf1 -0.3   (shrinkage=0.1, already folded)
func TestLightGBMBinary(t *testing.T) {
	m := loadLGB(t, "binary.txt")
	tests := []struct {
		x      []float64
		margin float64
	}{
		// f0=0.5 equals the threshold: <= goes left, -0.4; f1=5 > -1: -0.3.
		{[]float64{0.5, 5}, -0.4 - 0.3},
		// f0 NaN, NaN-missing default left: -0.4; -0.3.
		{[]float64{lgbNaN, 5}, -0.4 - 0.3},
		// f0=1 > 0.5 -> node1; f1=2 equals the threshold and is not zero:
		// left 0.2; tree 1: 2 > -1: -0.3.
		{[]float64{1, 2}, 0.2 - 0.3},
		// f1=0 is Zero-missing, default right: 0.6 although 0 <= 2;
		// tree 1: 0 > -1: -0.3.
		{[]float64{1, 0}, 0.6 - 0.3},
		// 1e-36 is within kZeroThreshold: missing, right 0.6; -0.3.
		{[]float64{1, 1e-36}, 0.6 - 0.3},
		// f1 NaN: Zero missing type turns NaN into 0, missing, right 0.6;
		// tree 1 (None) turns it into 0 > -1: -0.3.
		{[]float64{1, lgbNaN}, 0.6 - 0.3},
		// f1=-1 <= 2: 0.2; tree 1: -1 equals its threshold, left 0.15.
		{[]float64{1, -1}, 0.2 + 0.15},
		// An empty row is all NaN: tree 0 default left -0.4; tree 1 0 > -1: -0.3.
		{nil, -0.4 - 0.3},
		// f0=0.75 > 0.5, f1=-3 <= 2: 0.2; -3 <= -1: 0.15.
		{[]float64{0.75, -3}, 0.2 + 0.15},
	}
	for _, tt := range tests {
		if got := m.PredictMargin(tt.x); !lgbClose(got, tt.margin) {
			t.Errorf("PredictMargin(%v) = %v; want %v", tt.x, got, tt.margin)
		}
		want := lgbSigmoid(2, tt.margin)
		if got := m.Predict(tt.x); !lgbClose(got, want) {
			t.Errorf("Predict(%v) = %v; want %v", tt.x, got, want)
		}
		out := []float64{0, 0}
		m.PredictMulti(tt.x, out)
		if !lgbClose(out[0], want) || !math.IsNaN(out[1]) {
			t.Errorf("PredictMulti(%v) = %v; want [%v NaN]", tt.x, out, want)
		}
	}
	if got, want := m.NumFeatures(), 2; got != want {
		t.Errorf("NumFeatures() = %d; want %d", got, want)
	}
	if got, want := m.NumOutputs(), 1; got != want {
		t.Errorf("NumOutputs() = %d; want %d", got, want)
	}
	if got, want := m.NumTrees(), 2; got != want {
		t.Errorf("NumTrees() = %d; want %d", got, want)
	}
	if got, want := m.FeatureNames(), []string{"age", "income"}; !slices.Equal(got, want) {
		t.Errorf("FeatureNames() = %q; want %q", got, want)
	}
	if got, want := m.Objective(), "binary sigmoid:2"; got != want {
		t.Errorf("Objective() = %q; want %q", got, want)
	}
}

// categorical.txt (v3, objective regression, features color=f0, size=f1):
//
//	Tree 0: node0 f0 categorical (dt 1), cat_idx 0: bitset words
//	          cat_threshold[0:2] = 11 2 = categories {0,1,3} and {33}
//	          left leaf0 10, right node1
//	        node1 f1 <= 1.5, dt 2 (None, default left)
//	          left leaf1 20, right leaf2 30
//	Tree 1: a single leaf, 0.5.
func TestLightGBMCategorical(t *testing.T) {
	m := loadLGB(t, "categorical.txt")
	tests := []struct {
		x    []float64
		want float64
	}{
		{[]float64{1, 9}, 10 + 0.5},           // category 1 in the set
		{[]float64{3.7, 9}, 10 + 0.5},         // int(3.7) = 3 in the set
		{[]float64{33, 9}, 10 + 0.5},          // bit 1 of word 1
		{[]float64{0, 9}, 10 + 0.5},           // category 0 in the set
		{[]float64{-0.5, 9}, 10 + 0.5},        // int(-0.5) = 0, not negative
		{[]float64{2, 0}, 20 + 0.5},           // 2 not in the set; 0 <= 1.5
		{[]float64{2, 1.5}, 20 + 0.5},         // boundary: 1.5 <= 1.5
		{[]float64{2, 2}, 30 + 0.5},           // 2 > 1.5
		{[]float64{lgbNaN, 2}, 30 + 0.5},      // NaN goes right even though 0 is in the set
		{[]float64{-1, 2}, 30 + 0.5},          // negative goes right
		{[]float64{64, 1}, 20 + 0.5},          // word 2 is beyond the bitset: right
		{[]float64{5e9, 1}, 20 + 0.5},         // beyond int32: right
		{[]float64{lgbNaN, lgbNaN}, 20 + 0.5}, // right; None-missing NaN -> 0 <= 1.5
		{[]float64{math.Inf(1), 3}, 30.5},     // +Inf: right; 3 > 1.5
	}
	for _, tt := range tests {
		if got := m.Predict(tt.x); !lgbClose(got, tt.want) {
			t.Errorf("Predict(%v) = %v; want %v", tt.x, got, tt.want)
		}
		if got := m.PredictMargin(tt.x); !lgbClose(got, tt.want) {
			t.Errorf("PredictMargin(%v) = %v; want %v", tt.x, got, tt.want)
		}
	}
}

// multiclass.txt (v4, multiclass num_class:3, one feature x). Tree i adds to
// class i % 3; every split is x <= thr with dt 2 (None: NaN -> 0).
//
//	Tree 0 (class 0): x <= 0 ? 1 : -1
//	Tree 1 (class 1): x <= 1 ? 0.5 : 0
//	Tree 2 (class 2): x <= 2 ? -0.5 : 1.5
//	Tree 3 (class 0): single leaf 0.1
//	Tree 4 (class 1): x <= 0 ? 0.3 : -0.3
//	Tree 5 (class 2): x <= 1 ? 0 : 0.4
func TestLightGBMMulticlass(t *testing.T) {
	m := loadLGB(t, "multiclass.txt")
	tests := []struct {
		x    []float64
		want []float64
	}{
		{[]float64{0}, lgbSoftmax3(1+0.1, 0.5+0.3, -0.5+0)},      // all boundaries left
		{[]float64{lgbNaN}, lgbSoftmax3(1+0.1, 0.5+0.3, -0.5+0)}, // NaN -> 0
		{[]float64{1}, lgbSoftmax3(-1+0.1, 0.5-0.3, -0.5+0)},     // 1 <= 1, 1 <= 2
		{[]float64{3}, lgbSoftmax3(-1+0.1, 0-0.3, 1.5+0.4)},      // all right
		{[]float64{-2}, lgbSoftmax3(1+0.1, 0.5+0.3, -0.5+0)},     // all left
		{[]float64{1.5}, lgbSoftmax3(-1+0.1, 0-0.3, -0.5+0.4)},   // 1.5 <= 2 only
	}
	for _, tt := range tests {
		got := make([]float64, 3)
		m.PredictMulti(tt.x, got)
		for k := range got {
			if !lgbClose(got[k], tt.want[k]) {
				t.Errorf("PredictMulti(%v) = %v; want %v", tt.x, got, tt.want)
				break
			}
		}
		if got := m.Predict(tt.x); !math.IsNaN(got) {
			t.Errorf("Predict(%v) = %v; want NaN", tt.x, got)
		}
		if got := m.PredictMargin(tt.x); !math.IsNaN(got) {
			t.Errorf("PredictMargin(%v) = %v; want NaN", tt.x, got)
		}
	}
	if got, want := m.NumOutputs(), 3; got != want {
		t.Errorf("NumOutputs() = %d; want %d", got, want)
	}
}

// forest.txt (v4, regression, average_output, one feature x): the three tree
// outputs are averaged.
//
//	Tree 0: x <= 1 ? 2 : 4, dt 2 (None)
//	Tree 1: x <= 2 ? 3 : 6, dt 2 (None)
//	Tree 2: x <= 0 ? 1 : 5, dt 8 (NaN missing, default right)
func TestLightGBMAverageOutput(t *testing.T) {
	m := loadLGB(t, "forest.txt")
	tests := []struct {
		x    []float64
		want float64
	}{
		{[]float64{0}, (2 + 3 + 1) / 3.0},
		{[]float64{1.5}, (4 + 3 + 5) / 3.0},
		{[]float64{3}, (4 + 6 + 5) / 3.0},
		{[]float64{1}, (2 + 3 + 5) / 3.0},
		// NaN: trees 0 and 1 see 0; tree 2 sends NaN right.
		{[]float64{lgbNaN}, (2 + 3 + 5) / 3.0},
	}
	for _, tt := range tests {
		if got := m.Predict(tt.x); !lgbClose(got, tt.want) {
			t.Errorf("Predict(%v) = %v; want %v", tt.x, got, tt.want)
		}
	}
}

// TestLightGBMObjectives swaps the objective line of binary.txt; for
// x = (1, 0) the margin is 0.6 - 0.3 = 0.3 (see TestLightGBMBinary).
func TestLightGBMObjectives(t *testing.T) {
	src := string(readLGB(t, "binary.txt"))
	const margin = 0.6 - 0.3
	tests := []struct {
		objective string
		want      float64
	}{
		{"binary sigmoid:1", lgbSigmoid(1, margin)},
		{"binary sigmoid:0.5", lgbSigmoid(0.5, margin)},
		{"binary", lgbSigmoid(1, margin)},
		{"cross_entropy", lgbSigmoid(1, margin)},
		{"regression", margin},
		{"regression_l1", margin},
		{"huber alpha:0.9", margin},
		{"lambdarank", margin},
		{"poisson", math.Exp(margin)},
		{"", margin}, // custom objective: raw score
	}
	for _, tt := range tests {
		text := strings.Replace(src, "objective=binary sigmoid:2\n", "objective="+tt.objective+"\n", 1)
		if tt.objective == "" {
			text = strings.Replace(src, "objective=binary sigmoid:2\n", "", 1)
		}
		m, err := gbm.LoadLightGBM(strings.NewReader(text))
		if err != nil {
			t.Errorf("LoadLightGBM(objective=%q): %v", tt.objective, err)
			continue
		}
		if got := m.Predict([]float64{1, 0}); !lgbClose(got, tt.want) {
			t.Errorf("objective %q: Predict([1 0]) = %v; want %v", tt.objective, got, tt.want)
		}
	}
}

func TestLightGBMBadModels(t *testing.T) {
	binary := string(readLGB(t, "binary.txt"))
	cat := string(readLGB(t, "categorical.txt"))
	multi := string(readLGB(t, "multiclass.txt"))
	tests := []struct {
		name, src, old, new string
		want                error
	}{
		{"empty", "", "", "", gbm.ErrInvalidModel},
		{"not a model", "hello\n", "", "", gbm.ErrInvalidModel},
		{"version", binary, "version=v4", "version=v2", gbm.ErrUnsupportedModel},
		{"no version", binary, "version=v4\n", "", gbm.ErrInvalidModel},
		{"no num_class", binary, "num_class=1\n", "", gbm.ErrInvalidModel},
		{"bad max_feature_idx", binary, "max_feature_idx=1", "max_feature_idx=x", gbm.ErrInvalidModel},
		{"feature_names count", binary, "feature_names=age income", "feature_names=age", gbm.ErrInvalidModel},
		{"objective", binary, "objective=binary sigmoid:2", "objective=multiclassova num_class:1", gbm.ErrUnsupportedModel},
		{"sqrt", binary, "objective=binary sigmoid:2", "objective=regression sqrt", gbm.ErrUnsupportedModel},
		{"sigmoid", binary, "sigmoid:2", "sigmoid:-1", gbm.ErrInvalidModel},
		{"multiclass num_class", multi, "num_class:3", "num_class:4", gbm.ErrInvalidModel},
		{"binary with 3 classes", binary, "num_class=1", "num_class=3", gbm.ErrInvalidModel},
		{"truncated", binary, "end of trees", "", gbm.ErrInvalidModel},
		{"tree index", binary, "Tree=1", "Tree=2", gbm.ErrInvalidModel},
		{"no trees", binary[:strings.Index(binary, "Tree=0")] + "end of trees\n", "", "", gbm.ErrInvalidModel},
		{"tree count", multi, "Tree=5", "end of trees\nTree=5", gbm.ErrInvalidModel},
		{"num_leaves 0", binary, "num_leaves=3", "num_leaves=0", gbm.ErrInvalidModel},
		{"num_leaves", binary, "num_leaves=3", "num_leaves=4", gbm.ErrInvalidModel},
		{"leaf NaN", binary, "leaf_value=-0.40000000000000002", "leaf_value=lgbNaN", gbm.ErrInvalidModel},
		{"threshold NaN", binary, "threshold=0.5 2", "threshold=lgbNaN 2", gbm.ErrInvalidModel},
		{"feature range", binary, "split_feature=0 1", "split_feature=0 2", gbm.ErrInvalidModel},
		{"child range", binary, "right_child=1 -3", "right_child=1 -4", gbm.ErrInvalidModel},
		{"cycle", binary, "right_child=1 -3", "right_child=1 1", gbm.ErrInvalidModel},
		{"root child", binary, "right_child=1 -3", "right_child=0 -3", gbm.ErrInvalidModel},
		{"shared leaf", binary, "right_child=1 -3", "right_child=1 -2", gbm.ErrInvalidModel},
		{"decision_type", binary, "decision_type=10 4", "decision_type=12 4", gbm.ErrInvalidModel},
		{"linear", binary, "is_linear=0", "is_linear=1", gbm.ErrUnsupportedModel},
		{"bad number", binary, "left_child=-1 -2", "left_child=-1 x", gbm.ErrInvalidModel},
		{"cat_boundaries", cat, "cat_boundaries=0 2", "cat_boundaries=0 3", gbm.ErrInvalidModel},
		{"cat index", cat, "threshold=0 1.5", "threshold=1 1.5", gbm.ErrInvalidModel},
		{"cat words", cat, "cat_threshold=11 2", "cat_threshold=11", gbm.ErrInvalidModel},
		{"num_cat", cat, "num_cat=1", "num_cat=5", gbm.ErrInvalidModel},
	}
	for _, tt := range tests {
		src := tt.src
		if tt.old != "" {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("%s: fixture lacks %q", tt.name, tt.old)
			}
			src = strings.Replace(src, tt.old, tt.new, 1)
		}
		m, err := gbm.LoadLightGBM(strings.NewReader(src))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: LoadLightGBM() = %v, %v; want error %v", tt.name, m, err, tt.want)
		}
	}
}

func FuzzLoadLightGBM(f *testing.F) {
	for _, name := range []string{"binary.txt", "categorical.txt", "multiclass.txt", "forest.txt"} {
		f.Add(readLGB(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := gbm.LoadLightGBM(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, gbm.ErrInvalidModel) && !errors.Is(err, gbm.ErrUnsupportedModel) {
				t.Fatalf("LoadLightGBM: unwrapped error %v", err)
			}
			return
		}
		out := make([]float64, m.NumOutputs())
		for _, x := range [][]float64{nil, {0, 0, 0}, {lgbNaN, 1, -1}, {1e10, -1e10, 0.5}} {
			m.Predict(x)
			m.PredictMargin(x)
			m.PredictMulti(x, out)
		}
	})
}

// predictor is the method set LightGBMModel shares with the XGBoost Model, so
// callers such as Build can hold either.
type predictor interface {
	Predict(x []float64) float64
	PredictMargin(x []float64) float64
	PredictMulti(x []float64, out []float64)
	NumFeatures() int
	NumOutputs() int
	NumTrees() int
	FeatureNames() []string
	Objective() string
}

var (
	_ predictor = (*gbm.XGBoost)(nil)
	_ predictor = (*gbm.LightGBM)(nil)
)

func BenchmarkLightGBMPredict(b *testing.B) {
	for _, name := range []string{"binary.txt", "categorical.txt", "multiclass.txt"} {
		b.Run(strings.TrimSuffix(name, ".txt"), func(b *testing.B) {
			m := loadLGB(b, name)
			x := []float64{1, 0.25}
			out := make([]float64, m.NumOutputs())
			b.ReportAllocs()
			for b.Loop() {
				m.PredictMulti(x, out)
			}
		})
	}
}
