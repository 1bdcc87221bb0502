package linear_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/builtin"
	"github.com/recserve/recserve/models/linear"
)

// A linear model scores feature rows: `recctl predict` and the Scorer role
// take it as a models.RowModel.
var _ models.RowModel = (*linear.RowModel)(nil)

// fixtureFeatures is the feature order of testdata/logistic.json.
var fixtureFeatures = strings.Split("user_views,user_carts,item_price,item_ctr,item_age_days,dwell_seconds,"+
	"revenue_30d,price_delta,is_new,session_depth,brand_affinity,rating", ",")

// versionDir writes a version directory holding model.yaml and the model file
// linear.json with the given content.
func versionDir(t *testing.T, content string, spec models.Spec) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ctr", "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "linear.json"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if spec.Kind == "" {
		spec.Kind = linear.Kind
	}
	if err := models.WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// buildDir loads dir through the built-in kinds table, as the server and
// `recctl predict` do.
func buildDir(t *testing.T, dir string) (*linear.RowModel, error) {
	t.Helper()
	spec, err := models.ReadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := builtin.Registry().Build(context.Background(), models.Env{}, models.Version{Name: "ctr", ID: "1", Dir: dir, Spec: spec})
	if err != nil {
		return nil, err
	}
	lm, ok := m.(*linear.RowModel)
	if !ok {
		t.Fatalf("Build returned %T; want *linear.Model", m)
	}
	t.Cleanup(func() { lm.Close() })
	return lm, nil
}

func TestBuildPredictsLikeLoad(t *testing.T) {
	content := fixture(t, "logistic.json")
	s, err := buildDir(t, versionDir(t, content, models.Spec{File: "linear.json"}))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if got := models.Roles(s); len(got) != 0 {
		t.Errorf("Roles = %v; want none until the feature pipeline exists", got)
	}
	want := mustLoad(t, content)
	_, inputs := readCSV(t, filepath.Join("testdata", "inputs.csv"), true)
	out := make([]float64, s.NumOutputs())
	for r, x := range inputs[:500] {
		s.PredictRow(x, out)
		if w := want.Predict(x); out[0] != w {
			t.Fatalf("row %d: PredictRow = %v; Load+Predict = %v", r, out[0], w)
		}
	}
	// linear.Build directly, without the table.
	m, err := linear.Build(context.Background(), models.Env{}, models.Version{Dir: filepath.Dir(filepath.Join(t.TempDir(), "x")), Spec: models.Spec{Kind: linear.Kind}})
	if err == nil || !strings.Contains(err.Error(), "file is required") {
		t.Errorf("Build(no file) = %v, %v; want file is required", m, err)
	}
}

func TestBuildFeatureBinding(t *testing.T) {
	reversed := make([]string, len(fixtureFeatures))
	for i, f := range fixtureFeatures {
		reversed[len(reversed)-1-i] = f
	}
	for _, tt := range []struct {
		name   string
		listed []string
	}{
		{"none listed", nil},
		{"same order", fixtureFeatures},
		// Rows are laid out in the file's order whatever order model.yaml
		// lists the (same) names in.
		{"another order", reversed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := buildDir(t, versionDir(t, fixture(t, "logistic.json"), models.Spec{File: "linear.json", Features: tt.listed}))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if got, want := strings.Join(s.Features(), ","), strings.Join(fixtureFeatures, ","); got != want {
				t.Errorf("Features() = %s; want %s", got, want)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	small := `{"features":["a","b","c"],"coefficients":[1,2,3],"intercept":0}`
	tests := []struct {
		name    string
		content string
		spec    models.Spec
		want    []string // substrings of the error
		is      error
	}{
		{"no file", small, models.Spec{}, []string{"file is required"}, nil},
		{"file escapes", small, models.Spec{File: "../linear.json"}, []string{"escapes the version directory"}, nil},
		{"absolute file", small, models.Spec{File: "/etc/passwd"}, []string{"escapes the version directory"}, nil},
		{"file absent", small, models.Spec{File: "other.json"}, []string{"other.json"}, os.ErrNotExist},
		{"invalid file", `{"features":["a"],"coefficients":[1],"intercept":0,"bias":1}`, models.Spec{File: "linear.json"},
			[]string{"linear.json: linear: invalid model: unknown key \"bias\""}, linear.ErrInvalidModel},
		{"truncated file", `{"features":["a"],`, models.Spec{File: "linear.json"},
			[]string{"linear.json", "truncated JSON"}, linear.ErrInvalidModel},
		{"unknown feature", small, models.Spec{File: "linear.json", Features: []string{"a", "b", "c", "d"}},
			[]string{"features: model.yaml lists d not in linear.json; linear.json expects a, b, c"}, nil},
		{"missing feature", small, models.Spec{File: "linear.json", Features: []string{"c", "a"}},
			[]string{"features: model.yaml omits b; linear.json expects a, b, c"}, nil},
		{"unknown and missing", small, models.Spec{File: "linear.json", Features: []string{"a", "x", "y"}},
			[]string{"features: model.yaml lists x, y not in linear.json; model.yaml omits b, c; linear.json expects a, b, c"}, nil},
		{"repeated feature", small, models.Spec{File: "linear.json", Features: []string{"a", "b", "c", "a"}},
			[]string{"features: model.yaml lists a more than once"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildDir(t, versionDir(t, tt.content, tt.spec))
			if err == nil {
				t.Fatalf("Build(%+v) = nil error; want %q", tt.spec, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Build(%+v) = %q; want it to contain %q", tt.spec, err, w)
				}
			}
			if !strings.Contains(err.Error(), "load ctr/1 (linear)") {
				t.Errorf("Build(%+v) = %q; want the kinds table's context", tt.spec, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Build(%+v) = %v; want errors.Is %v", tt.spec, err, tt.is)
			}
		})
	}
}

func TestBuiltinRegistersLinear(t *testing.T) {
	for _, name := range builtin.Registry().Names() {
		if name == linear.Kind {
			return
		}
	}
	t.Errorf("builtin.Kinds().Names() = %v; want it to include %q", builtin.Registry().Names(), linear.Kind)
}
