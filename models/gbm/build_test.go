package gbm_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/builtin"
	"github.com/recserve/recserve/models/gbm"
)

var tenFeatures = strings.Split("f0,f1,f2,f3,f4,f5,f6,f7,f8,f9", ",")

// versionDir writes a version directory holding model.yaml and a copy of the
// fixture model (named model.json), with its stored feature names removed
// when stripNames is set.
func versionDir(t *testing.T, fixture string, stripNames bool, spec models.Spec) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if stripNames {
		re := regexp.MustCompile(`"feature_names":\[[^\]]*\]`)
		if !re.Match(b) {
			t.Fatalf("%s: no feature_names to strip", fixture)
		}
		b = re.ReplaceAll(b, []byte(`"feature_names":[]`))
	}
	dir := filepath.Join(t.TempDir(), fixture, "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if spec.Kind == "" {
		spec.Kind = gbm.Kind
	}
	if err := models.WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildDir loads dir through the built-in kinds table, as the server does.
func buildDir(t *testing.T, dir string) (*gbm.RowModel, error) {
	t.Helper()
	spec, err := models.ReadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := builtin.Registry().Build(context.Background(), models.Env{}, models.Version{Name: "m", ID: "1", Dir: dir, Spec: spec})
	if err != nil {
		return nil, err
	}
	s, ok := m.(*gbm.RowModel)
	if !ok {
		t.Fatalf("Build returned %T; want *gbm.Scorer", m)
	}
	t.Cleanup(func() { s.Close() })
	return s, nil
}

func TestBuildPredictsLikeXGBoost(t *testing.T) {
	_, inputs := readCSV(t, filepath.Join("testdata", "inputs.csv"), true)
	inputs = inputs[:500]
	for _, pm := range parityModels {
		t.Run(pm.name, func(t *testing.T) {
			s, err := buildDir(t, versionDir(t, pm.name, false, models.Spec{File: "model.json"}))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if _, isScorer := any(s).(models.Scorer); isScorer {
				t.Errorf("*gbm.Scorer implements models.Scorer itself; the role comes from binding to a feature pipeline")
			}
			if got, want := strings.Join(s.Features(), ","), strings.Join(tenFeatures, ","); got != want {
				t.Errorf("Features() = %s; want %s", got, want)
			}
			if got := s.NumOutputs(); got != pm.outputs {
				t.Fatalf("NumOutputs() = %d; want %d", got, pm.outputs)
			}
			_, want := readCSV(t, filepath.Join("testdata", pm.name+".pred.csv"), false)
			out := make([]float64, s.NumOutputs())
			k := s.NumOutputs()
			var xs []float64
			for _, x := range inputs {
				xs = append(xs, x...)
			}
			batch := make([]float64, len(inputs)*k)
			s.PredictRows(xs, batch)
			for r, x := range inputs {
				s.PredictRow(x, out)
				for j, v := range out {
					if d := math.Abs(v - want[r][j]); !(d <= parityTol) {
						t.Fatalf("row %d: PredictRow[%d] = %v; want %v", r, j, v, want[r][j])
					}
					if batch[r*k+j] != v {
						t.Fatalf("row %d: PredictRows[%d] = %v; want PredictRow's %v", r, j, batch[r*k+j], v)
					}
				}
			}
		})
	}
}

func TestBuildFeatureBinding(t *testing.T) {
	reversed := make([]string, len(tenFeatures))
	for i, f := range tenFeatures {
		reversed[len(reversed)-1-i] = f
	}
	named := strings.Split("age,price,views,carts,days,recency,ctr,brand_aff,cat_aff,discount", ",")
	tests := []struct {
		name       string
		stripNames bool
		features   []string
		want       []string
	}{
		{"model names", false, nil, tenFeatures},
		{"same names listed", false, tenFeatures, tenFeatures},
		// Rows are laid out in the model's order whatever order model.yaml
		// lists the names in.
		{"names listed in another order", false, reversed, tenFeatures},
		{"positional names from model.yaml", true, named, named},
		{"no names anywhere", true, nil, tenFeatures},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := buildDir(t, versionDir(t, "binary", tt.stripNames, models.Spec{File: "model.json", Features: tt.features}))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if got, want := strings.Join(s.Features(), ","), strings.Join(tt.want, ","); got != want {
				t.Errorf("Features() = %s; want %s", got, want)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name       string
		stripNames bool
		spec       models.Spec
		want       []string // substrings of the error
		is         error
	}{
		{"no file", false, models.Spec{}, []string{"file is required"}, nil},
		{"file escapes", false, models.Spec{File: "../model.json"}, []string{"escapes the version directory"}, nil},
		{"file absent", false, models.Spec{File: "other.json"}, []string{"other.json"}, os.ErrNotExist},
		{"xgboost file read as lightgbm", false, models.Spec{File: "model.json", Params: map[string]any{"format": "lightgbm"}},
			[]string{"model.json"}, gbm.ErrInvalidModel},
		{"unknown format", false, models.Spec{File: "model.json", Params: map[string]any{"format": "onnx"}},
			[]string{`params.format "onnx"`, "xgboost_json"}, models.ErrUnsupported},
		{"format not a string", false, models.Spec{File: "model.json", Params: map[string]any{"format": 3}},
			[]string{"params.format: want a string"}, nil},
		{"feature not in model", false, models.Spec{File: "model.json", Features: append(append([]string(nil), tenFeatures[:8]...), "price", "age")},
			[]string{"features: model.yaml lists price, age not in the model; model expects f0, f1, f2, f3, f4, f5, f6, f7, f8, f9"}, nil},
		{"too few features", false, models.Spec{File: "model.json", Features: tenFeatures[:9]},
			[]string{"features: model.yaml lists 9 features; model expects 10"}, nil},
		{"duplicate feature", false, models.Spec{File: "model.json", Features: append(append([]string(nil), tenFeatures[:9]...), "f0")},
			[]string{"features: model.yaml lists f0 more than once"}, nil},
		{"positional count mismatch", true, models.Spec{File: "model.json", Features: []string{"a", "b"}},
			[]string{"features: model.yaml lists 2 features; model expects 10"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildDir(t, versionDir(t, "binary", tt.stripNames, tt.spec))
			if err == nil {
				t.Fatalf("Build(%+v) = nil error; want %q", tt.spec, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Build(%+v) = %q; want it to contain %q", tt.spec, err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Build(%+v) = %v; want errors.Is %v", tt.spec, err, tt.is)
			}
		})
	}
}

func TestBuildInvalidModelFile(t *testing.T) {
	dir := versionDir(t, "binary", false, models.Spec{File: "model.json"})
	if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(`{"learner":`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := buildDir(t, dir)
	if !errors.Is(err, gbm.ErrInvalidModel) || !strings.Contains(err.Error(), "model.json") {
		t.Errorf("Build(truncated model) = %v; want ErrInvalidModel naming model.json", err)
	}
}

// TestBuildLightGBM serves a LightGBM text model through the kinds table and
// checks it predicts as the reader does, with its stored feature names bound.
func TestBuildLightGBM(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "lightgbm", "binary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "lgb", "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.txt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := models.Spec{Kind: gbm.Kind, File: "model.txt", Features: []string{"income", "age"}, Params: map[string]any{"format": "lightgbm"}}
	if err := models.WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	s, err := buildDir(t, dir)
	if err != nil {
		t.Fatalf("Build(lightgbm) error = %v", err)
	}
	if got := s.Features(); !slices.Equal(got, []string{"age", "income"}) {
		t.Errorf("Features() = %v; want the model's order [age income]", got)
	}
	ref, err := gbm.LoadLightGBM(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, 1)
	rows := [][]float64{{0, 0}, {1.5, math.NaN()}, {math.NaN(), 3}, {-2, 10}}
	batch := make([]float64, len(rows))
	s.PredictRows(slices.Concat(rows...), batch)
	for i, x := range rows {
		s.PredictRow(x, out)
		if want := ref.Predict(x); out[0] != want || batch[i] != want {
			t.Errorf("PredictRow(%v) = %v, PredictRows %v; want %v (LoadLightGBM)", x, out[0], batch[i], want)
		}
	}
}
