package gbm_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recserve/recserve/internal/fixtures"
	"github.com/recserve/recserve/models/gbm"
)

// parityTol is the largest difference allowed between our predictions and
// XGBoost's own.
const parityTol = 1e-6

var parityModels = []struct {
	name, objective string
	outputs         int
}{
	{"binary", "binary:logistic", 1},
	{"regression", "reg:squarederror", 1},
	{"multiclass", "multi:softprob", 3},
	{"forest", "binary:logistic", 1},
	{"dart", "binary:logistic", 1},
}

// readCSV reads a numeric parity fixture (fixtures.ReadCSV), failing t on
// error.
func readCSV(t testing.TB, path string, header bool) ([]string, [][]float64) {
	t.Helper()
	names, rows, err := fixtures.ReadCSV(path, header)
	if err != nil {
		t.Fatal(err)
	}
	return names, rows
}

func load(t testing.TB, path string) *gbm.XGBoost {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := gbm.LoadXGBoostJSON(f)
	if err != nil {
		t.Fatalf("LoadXGBoostJSON(%s): %v", path, err)
	}
	return m
}

// checkParity compares every row's prediction with XGBoost's in dir and
// returns the largest absolute difference per model.
func checkParity(t *testing.T, dir string) {
	names, inputs := readCSV(t, filepath.Join(dir, "inputs.csv"), true)
	if len(inputs) < 10000 {
		t.Fatalf("%s has %d rows; want at least 10000", dir, len(inputs))
	}
	missing := 0
	for _, row := range inputs {
		for _, v := range row {
			if math.IsNaN(v) {
				missing++
			}
		}
	}
	if frac := float64(missing) / float64(len(inputs)*len(names)); frac < 0.05 {
		t.Errorf("only %.1f%% of inputs are missing; want about 10%%", 100*frac)
	}
	for _, pm := range parityModels {
		t.Run(pm.name, func(t *testing.T) {
			m := load(t, filepath.Join(dir, pm.name+".json"))
			_, want := readCSV(t, filepath.Join(dir, pm.name+".pred.csv"), false)
			if len(want) != len(inputs) {
				t.Fatalf("%d predictions for %d inputs", len(want), len(inputs))
			}
			if got := m.Objective(); got != pm.objective {
				t.Errorf("Objective() = %q; want %q", got, pm.objective)
			}
			if got := m.NumOutputs(); got != pm.outputs {
				t.Errorf("NumOutputs() = %d; want %d", got, pm.outputs)
			}
			if got, want := strings.Join(m.FeatureNames(), ","), strings.Join(names, ","); got != want {
				t.Errorf("FeatureNames() = %s; want %s", got, want)
			}
			if got := m.NumFeatures(); got != len(names) {
				t.Errorf("NumFeatures() = %d; want %d", got, len(names))
			}
			out := make([]float64, m.NumOutputs())
			worst := 0.0
			for r, x := range inputs {
				m.PredictMulti(x, out)
				if pm.outputs == 1 {
					if p := m.Predict(x); p != out[0] {
						t.Fatalf("row %d: Predict = %v, PredictMulti = %v", r, p, out[0])
					}
				}
				for c, w := range want[r] {
					d := math.Abs(out[c] - w)
					if !(d <= parityTol) {
						t.Fatalf("row %d class %d: prediction %v; xgboost %v (diff %g)", r, c, out[c], w, d)
					}
					worst = max(worst, d)
				}
			}
			t.Logf("%s (%s, %d trees): %d rows, max abs diff %.3g", pm.name, pm.objective, m.NumTrees(), len(inputs), worst)
		})
	}
}

func TestParityFixtures(t *testing.T) { checkParity(t, "testdata") }

// TestParityRegenerated retrains the fixtures with the local XGBoost, when
// there is one, and checks parity against it.
func TestParityRegenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping XGBoost regeneration in -short mode")
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import xgboost, numpy").Run(); err != nil {
		t.Skipf("skipping: %s with xgboost and numpy not available (%v); apt-get install python3-xgboost python3-numpy", python, err)
	}
	dir := t.TempDir()
	cmd := exec.Command(python, "../../training/python/xgb_parity.py", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xgb_parity.py: %v\n%s", err, out)
	}
	if v, err := os.ReadFile(filepath.Join(dir, "VERSION")); err == nil {
		t.Logf("regenerated with %s", bytes.TrimSpace(v))
	}
	checkParity(t, dir)
}

// stump is a valid one-split model: f0 < 0.5 goes left (leaf -1), else right
// (leaf 2); missing goes right.
const stump = `{"learner":{
 "feature_names":["a","b"],
 "learner_model_param":{"base_score":BASE,"num_class":"0","num_feature":"2"},
 "objective":{"name":"OBJ"},
 "gradient_booster":{"name":"gbtree","model":{
  "gbtree_model_param":{"num_parallel_tree":"1","num_trees":"1"},
  "tree_info":[0],
  "trees":[{"left_children":[1,-1,-1],"right_children":[2,-1,-1],
   "split_indices":[0,0,0],"split_conditions":[0.5,-1,2],"default_left":[0,0,0],
   "split_type":[0,0,0],"tree_param":{"num_nodes":"3","size_leaf_vector":"1"}}]}}},
 "version":[2,1,0]}`

func stumpJSON(obj, base string) string {
	return strings.NewReplacer("OBJ", obj, "BASE", base).Replace(stump)
}

func TestStump(t *testing.T) {
	sigmoid := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	nan := math.NaN()
	tests := []struct {
		obj, base string
		x         []float64
		want      float64
	}{
		{"reg:squarederror", `"5E-1"`, []float64{0, 0}, -0.5},
		{"reg:squarederror", `"[5E-1]"`, []float64{1, 0}, 2.5}, // 3.x vector
		{"reg:squarederror", `"1"`, []float64{0.5, 0}, 3},      // x == threshold goes right
		{"reg:squarederror", `"0"`, []float64{nan, 0}, 2},      // missing follows default_left=0
		{"reg:squarederror", `"0"`, nil, 2},                    // short rows are missing
		{"binary:logitraw", `"0.25"`, []float64{0, 0}, -0.75},
		{"rank:ndcg", `"0"`, []float64{0, 0}, -1},
		{"binary:logistic", `"5E-1"`, []float64{0, 0}, sigmoid(-1)},
		{"reg:logistic", `"[2.5E-1]"`, []float64{1, 0}, sigmoid(2 + math.Log(1.0/3))},
		{"count:poisson", `"1"`, []float64{1, 0}, math.Exp(2)},
	}
	for _, tt := range tests {
		m, err := gbm.LoadXGBoostJSON(strings.NewReader(stumpJSON(tt.obj, tt.base)))
		if err != nil {
			t.Fatalf("%s base %s: %v", tt.obj, tt.base, err)
		}
		if got := m.Predict(tt.x); math.Abs(got-tt.want) > 1e-6 {
			t.Errorf("%s base %s: Predict(%v) = %v; want %v", tt.obj, tt.base, tt.x, got, tt.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	good := stumpJSON("reg:squarederror", `"0.5"`)
	tests := []struct {
		name, old, new string
		want           error
		msg            string
	}{
		{"unknown objective", `"reg:squarederror"`, `"reg:nope"`, gbm.ErrUnsupportedModel, "reg:nope"},
		{"child out of range", `"left_children":[1,-1,-1]`, `"left_children":[7,-1,-1]`, gbm.ErrInvalidModel, "out of range"},
		{"cycle", `"left_children":[1,-1,-1]`, `"left_children":[0,-1,-1]`, gbm.ErrInvalidModel, "twice"},
		{"feature out of range", `"split_indices":[0,0,0]`, `"split_indices":[5,0,0]`, gbm.ErrInvalidModel, "feature index 5"},
		{"negative feature", `"split_indices":[0,0,0]`, `"split_indices":[-1,0,0]`, gbm.ErrInvalidModel, "feature index -1"},
		{"huge threshold", `"split_conditions":[0.5,-1,2]`, `"split_conditions":[1e300,-1,2]`, gbm.ErrInvalidModel, "non-finite"},
		{"length mismatch", `"default_left":[0,0,0]`, `"default_left":[0,0]`, gbm.ErrInvalidModel, "length"},
		{"categorical", `"split_type":[0,0,0]`, `"split_type":[1,0,0]`, gbm.ErrUnsupportedModel, "categorical"},
		{"tree_info", `"tree_info":[0]`, `"tree_info":[1]`, gbm.ErrInvalidModel, "tree_info"},
		{"num_trees", `"num_trees":"1"`, `"num_trees":"2"`, gbm.ErrInvalidModel, "num_trees"},
		{"base_score", `"0.5"`, `"abc"`, gbm.ErrInvalidModel, "base_score"},
		{"gblinear", `"name":"gbtree"`, `"name":"gblinear"`, gbm.ErrUnsupportedModel, "gblinear"},
		{"vector leaf", `"size_leaf_vector":"1"`, `"size_leaf_vector":"3"`, gbm.ErrUnsupportedModel, "vector"},
		{"not json", `{"learner"`, `{"learner" x`, gbm.ErrInvalidModel, "decode"},
		{"softprob without classes", `"reg:squarederror"`, `"multi:softprob"`, gbm.ErrInvalidModel, "num_class"},
	}
	for _, tt := range tests {
		in := strings.Replace(good, tt.old, tt.new, 1)
		if in == good {
			t.Fatalf("%s: replacement %q not found", tt.name, tt.old)
		}
		_, err := gbm.LoadXGBoostJSON(strings.NewReader(in))
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: LoadXGBoostJSON = %v; want %v mentioning %q", tt.name, err, tt.want, tt.msg)
		}
	}
	logistic := stumpJSON("binary:logistic", `"1.5"`)
	if _, err := gbm.LoadXGBoostJSON(strings.NewReader(logistic)); !errors.Is(err, gbm.ErrInvalidModel) {
		t.Errorf("binary:logistic with base_score 1.5: err = %v; want ErrInvalidModel", err)
	}
}

func TestPredictMultiShapes(t *testing.T) {
	m := load(t, "testdata/multiclass.json")
	if got := m.Predict(make([]float64, 10)); !math.IsNaN(got) {
		t.Errorf("Predict on multi:softprob = %v; want NaN", got)
	}
	out := []float64{0, 0, 0, 7}
	m.PredictMulti(nil, out) // all missing; extra slot becomes NaN
	if s := out[0] + out[1] + out[2]; math.Abs(s-1) > 1e-6 || !math.IsNaN(out[3]) {
		t.Errorf("PredictMulti(nil) = %v; want 3 probabilities summing to 1 and NaN", out)
	}
	m.PredictMulti(nil, out[:1]) // short output must not panic
	m.PredictMulti(nil, nil)
	xs := make([]float64, 2*m.NumFeatures())
	batch := make([]float64, 2*m.NumOutputs())
	if err := m.PredictBatch(xs, batch); err != nil {
		t.Fatal(err)
	}
	if err := m.PredictBatch(xs[:3], batch); err == nil {
		t.Error("PredictBatch with a partial row: err = nil; want an error")
	}
}

func FuzzLoadXGBoostJSON(f *testing.F) {
	f.Add([]byte(stumpJSON("reg:squarederror", `"0.5"`)))
	f.Add([]byte(stumpJSON("binary:logistic", `"[5E-1]"`)))
	f.Add([]byte(`{"learner":{"objective":{"name":"multi:softprob"},"learner_model_param":{"num_class":"3","base_score":"[1,2,3]"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := gbm.LoadXGBoostJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		x := make([]float64, m.NumFeatures()+1)
		out := make([]float64, m.NumOutputs())
		m.Predict(x)
		m.PredictMulti(x, out)
		x[0] = math.NaN()
		m.Predict(x)
	})
}

func benchInputs(b *testing.B) [][]float64 {
	_, rows := readCSV(b, "testdata/inputs.csv", true)
	return rows[:1000]
}

func BenchmarkPredict(b *testing.B) {
	rows := benchInputs(b)
	for _, pm := range parityModels {
		m := load(b, filepath.Join("testdata", pm.name+".json"))
		out := make([]float64, m.NumOutputs())
		b.Run(pm.name+"/row", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.PredictMulti(rows[i%len(rows)], out)
				i++
			}
		})
		b.Run(pm.name+"/batch1000", func(b *testing.B) {
			xs := make([]float64, 0, len(rows)*m.NumFeatures())
			for _, r := range rows {
				xs = append(xs, r...)
			}
			res := make([]float64, len(rows)*m.NumOutputs())
			b.ReportAllocs()
			for b.Loop() {
				if err := m.PredictBatch(xs, res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
