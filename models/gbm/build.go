package gbm

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/recserve/recserve/models"
)

// Kind is the model.yaml kind of this family.
const Kind = "gbm"

// RowModel is a loaded gbm model version: a tree ensemble bound to the ordered
// feature names its input rows carry. It is immutable and safe for concurrent
// use.
//
// RowModel scores ready-made feature rows (models.RowModel), as `recctl
// predict` does; loaded with a feature pipeline in models.Env (the server,
// `recctl eval`) it also gets the models.Scorer role, its feature names bound
// to the pipeline's.
type RowModel struct {
	model    ensemble
	features []string
}

// ensemble is what RowModel needs of a loaded tree model, whatever format it
// was read from.
type ensemble interface {
	FeatureNames() []string
	NumFeatures() int
	NumOutputs() int
	PredictMulti(x []float64, out []float64)
}

var _ models.Model = (*RowModel)(nil)

// Build is the models.Builder of this kind. It reads the model file named by
// the spec's file key (required); params.format selects its format:
// xgboost_json (the default; Booster.save_model("model.json")) or lightgbm
// (the text format of Booster.save_model("model.txt")).
//
// The spec's features key, when present, is checked against the model: with
// feature names stored in the model, every listed name must be one of them
// and the counts must match; without, the listed names become the positional
// names of the model's inputs (again the count must match). A model with
// neither gets the names f0..fN-1.
func Build(_ context.Context, _ models.Env, v models.Version) (models.Model, error) {
	if v.Spec.File == "" {
		return nil, fmt.Errorf("file is required: the model file, relative to %s", v.Dir)
	}
	path, err := models.Path(v.Dir, v.Spec.File)
	if err != nil {
		return nil, err
	}
	format, err := v.Spec.ParamString("format", "xgboost_json")
	if err != nil {
		return nil, err
	}
	var load func(io.Reader) (ensemble, error)
	switch format {
	case "xgboost_json":
		load = func(r io.Reader) (ensemble, error) { return LoadXGBoostJSON(r) }
	case "lightgbm":
		load = func(r io.Reader) (ensemble, error) { return LoadLightGBM(r) }
	default:
		return nil, fmt.Errorf("params.format %q: want xgboost_json or lightgbm: %w", format, models.ErrUnsupported)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := load(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return newRowModel(m, v.Spec.Features)
}

// NewRowModel binds m to feature names as Build does: features may be nil (the
// model's own names, or f0..fN-1), and otherwise must agree with the model.
func NewRowModel(m *XGBoost, features []string) (*RowModel, error) { return newRowModel(m, features) }

func newRowModel(m ensemble, features []string) (*RowModel, error) {
	names, err := bindFeatures(m.FeatureNames(), m.NumFeatures(), features)
	if err != nil {
		return nil, err
	}
	return &RowModel{model: m, features: names}, nil
}

// bindFeatures returns the ordered input names of a model with the given
// stored names (possibly nil) and width, checked against the names listed in
// model.yaml (possibly nil).
func bindFeatures(modelNames []string, n int, listed []string) ([]string, error) {
	if len(listed) > 0 {
		seen := make(map[string]bool, len(listed))
		var dups []string
		for _, name := range listed {
			if seen[name] {
				dups = append(dups, name)
			}
			seen[name] = true
		}
		if len(dups) > 0 {
			return nil, fmt.Errorf("features: model.yaml lists %s more than once", strings.Join(dups, ", "))
		}
	}
	if len(modelNames) > 0 {
		if len(listed) > 0 {
			known := make(map[string]bool, len(modelNames))
			for _, name := range modelNames {
				known[name] = true
			}
			var unknown []string
			for _, name := range listed {
				if !known[name] {
					unknown = append(unknown, name)
				}
			}
			if len(unknown) > 0 {
				return nil, fmt.Errorf("features: model.yaml lists %s not in the model; model expects %s",
					strings.Join(unknown, ", "), strings.Join(modelNames, ", "))
			}
			if len(listed) != len(modelNames) || len(listed) != n {
				return nil, fmt.Errorf("features: model.yaml lists %d features; model expects %d: %s",
					len(listed), n, strings.Join(modelNames, ", "))
			}
		}
		// Rows are laid out in the model's order, whatever order model.yaml
		// lists the (same) names in.
		return append([]string(nil), modelNames...), nil
	}
	if len(listed) > 0 {
		if len(listed) != n {
			return nil, fmt.Errorf("features: model.yaml lists %d features; model expects %d", len(listed), n)
		}
		return append([]string(nil), listed...), nil
	}
	names := make([]string, n)
	for i := range names {
		names[i] = "f" + strconv.Itoa(i)
	}
	return names, nil
}

// Features returns the ordered feature names of a row: x[i] of PredictRow is
// the value of Features()[i]. The slice must not be modified.
func (s *RowModel) Features() []string { return s.features }

// NumOutputs is the number of values PredictRow writes: the number of classes
// for a multi-class probability model, 1 otherwise.
func (s *RowModel) NumOutputs() int { return s.model.NumOutputs() }

// PredictRow writes the prediction for row x (laid out as Features()) to out,
// which should have NumOutputs() elements. NaN marks a missing value, as do
// features beyond len(x).
func (s *RowModel) PredictRow(x []float64, out []float64) { s.model.PredictMulti(x, out) }

// PredictRows implements models.RowBatcher: rows stored row-major in xs
// (stride len(Features())), NumOutputs() values per row written to out.
// XGBoost models walk blocks of rows tree by tree; results equal PredictRow's.
func (s *RowModel) PredictRows(xs []float64, out []float64) {
	type batcher interface{ PredictBatch(xs, out []float64) error }
	w, k := len(s.features), s.model.NumOutputs()
	if b, ok := s.model.(batcher); ok && w == s.model.NumFeatures() && b.PredictBatch(xs, out) == nil {
		return
	}
	for i := 0; i*w < len(xs); i++ {
		s.model.PredictMulti(xs[i*w:(i+1)*w], out[i*k:(i+1)*k])
	}
}

// Probabilities reports whether predictions are probabilities of the
// positive class (logistic objectives), so that log loss means something.
func (s *RowModel) Probabilities() bool {
	p, ok := s.model.(interface{ probabilities() bool })
	return ok && p.probabilities()
}

func (m *XGBoost) probabilities() bool  { return m.transform == logistic }
func (m *LightGBM) probabilities() bool { return m.transform == logistic }

// Close implements models.Model; the ensemble holds no resources.
func (s *RowModel) Close() error { return nil }
