// Package linear provides Go-native inference for linear scorers trained
// elsewhere (scikit-learn LogisticRegression, or a LinearSVC whose decision
// function was Platt-scaled into a probability): one weight per feature, an
// intercept, optional standardisation and imputation of missing values, and a
// link. It needs no cgo and no Python at serving time.
//
// For a row x laid out as Features(), the model computes
//
//	x'_j   = x_j, or impute_j when x_j is NaN or j >= len(x)
//	z_j    = (x'_j - mean_j) / scale_j     (z_j = x'_j without standardisation)
//	margin = intercept + Σ_j coefficients_j * z_j
//	output = 1 / (1 + exp(-margin))        (link "logistic")
//	       = margin                        (link "identity")
//
// in float64, which is the arithmetic of sklearn's SimpleImputer,
// StandardScaler and decision_function, so predictions agree with sklearn's
// to about 1e-15.
//
// The model file (conventionally linear.json) is one JSON object:
//
//	{
//	  "model": "logistic_regression",   // optional, informational (Algorithm)
//	  "features": ["user_views", ...],  // required: unique, non-empty names
//	  "coefficients": [0.12, ...],      // required: one per feature
//	  "intercept": 0.03,                // required
//	  "mean": [...],                    // optional, with scale: one per feature
//	  "scale": [...],                   // optional, with mean: non-zero
//	  "impute": [...],                  // optional: raw value for a missing x_j;
//	                                    //   default mean_j, or 0 without mean
//	  "link": "logistic"                // optional: logistic (default) or identity
//	}
//
// Decoding is strict, because a typo must not silently drop the
// standardisation: unknown, misspelt (keys are case-sensitive) and repeated
// keys are errors, as are non-finite numbers and trailing data. An optional
// key whose value is null counts as absent. Every error wraps ErrInvalidModel
// and names the offending key.
package linear

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/recserve/recserve/models"
)

// Kind is the model.yaml kind of this family.
const Kind = "linear"

// Links name how a margin becomes the output.
const (
	// LinkLogistic outputs the probability 1/(1+exp(-margin)).
	LinkLogistic = "logistic"
	// LinkIdentity outputs the margin itself (a regression, or a raw SVM
	// decision value).
	LinkIdentity = "identity"
)

// ErrInvalidModel reports a model file that cannot be used: malformed JSON,
// a missing, unknown or repeated key, or values of the wrong length or not
// finite. Callers test it with errors.Is.
var ErrInvalidModel = errors.New("linear: invalid model")

// RowModel is a loaded linear scorer. It is immutable after loading and safe for
// concurrent use. It scores ready-made feature rows, as `recctl predict`
// does; like gbm.Scorer it does not implement models.Scorer, which needs the
// shared feature pipeline.
type RowModel struct {
	algorithm string
	link      string
	features  []string
	coef      []float64
	intercept float64
	// mean and scale are nil without standardisation.
	mean  []float64
	scale []float64
	// impute is the raw value used for a missing feature.
	impute []float64
	// missing[j] is coef_j * z_j of impute_j, precomputed (with the same
	// arithmetic as Margin uses for a present value) so a missing value
	// costs one addition.
	missing []float64
}

var _ models.Model = (*RowModel)(nil)

// file is linear.json as decoded; pointers tell absent keys (and nulls) from
// zero values, so that a null inside an array is an error rather than 0.
type file struct {
	model        *string
	features     []*string
	coefficients []*float64
	intercept    *float64
	mean         []*float64
	scale        []*float64
	impute       []*float64
	link         *string
}

// fileKeys lists the keys of linear.json, for error messages.
const fileKeys = "model, features, coefficients, intercept, mean, scale, impute, link"

// Load reads a linear.json model from r and validates it.
func Load(r io.Reader) (*RowModel, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("linear: read: %w", err)
	}
	f, err := decode(data)
	if err != nil {
		return nil, err
	}
	return f.validate()
}

// decode parses the top-level object key by key, so that unknown, repeated
// and wrongly-cased keys are caught (encoding/json matches struct fields
// case-insensitively and lets the last duplicate win).
func decode(data []byte) (*file, error) {
	// Check the syntax of the whole input first: unlike the streaming
	// decoder's, Unmarshal's syntax errors carry absolute byte offsets, and
	// it rejects trailing data.
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, syntaxError(data, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(data, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%w: want a JSON object, got %v", ErrInvalidModel, tok)
	}
	var f file
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(data, err)
		}
		key, ok := tok.(string)
		if !ok { // unreachable: the decoder only yields string keys
			return nil, fmt.Errorf("%w: want a key, got %v", ErrInvalidModel, tok)
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: %s: key appears more than once", ErrInvalidModel, key)
		}
		seen[key] = true
		var dst any
		var want string
		switch key {
		case "model":
			dst, want = &f.model, "a string"
		case "features":
			dst, want = &f.features, "an array of strings"
		case "coefficients":
			dst, want = &f.coefficients, "an array of numbers"
		case "intercept":
			dst, want = &f.intercept, "a number"
		case "mean":
			dst, want = &f.mean, "an array of numbers"
		case "scale":
			dst, want = &f.scale, "an array of numbers"
		case "impute":
			dst, want = &f.impute, "an array of numbers"
		case "link":
			dst, want = &f.link, "a string"
		default:
			return nil, fmt.Errorf("%w: unknown key %q (keys are %s)", ErrInvalidModel, key, fileKeys)
		}
		if err := dec.Decode(dst); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, syntaxError(data, err)
			}
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				got := te.Value
				if strings.HasPrefix(got, "number ") {
					got += " (out of float64 range)"
				}
				return nil, fmt.Errorf("%w: %s: want %s, got %s", ErrInvalidModel, key, want, got)
			}
			return nil, fmt.Errorf("%w: %s: want %s: %w", ErrInvalidModel, key, want, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, syntaxError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object at byte %d", ErrInvalidModel, dec.InputOffset())
	}
	return &f, nil
}

// syntaxError describes a JSON syntax error with its byte offset, and points
// out NaN and Infinity, which Python's json.dump writes by default but JSON
// does not have.
func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: truncated JSON", ErrInvalidModel)
		}
		return fmt.Errorf("%w: %w", ErrInvalidModel, err)
	}
	if se.Offset >= int64(len(data)) {
		return fmt.Errorf("%w: truncated JSON: %w", ErrInvalidModel, err)
	}
	hint := ""
	if at := se.Offset - 1; at >= 0 && at < int64(len(data)) {
		rest := data[at:]
		for _, p := range []string{"NaN", "nan", "Infinity", "inf"} {
			if bytes.HasPrefix(rest, []byte(p)) {
				hint = " (values must be finite: JSON has no NaN or Infinity)"
			}
		}
	}
	return fmt.Errorf("%w: byte %d: %w%s", ErrInvalidModel, se.Offset, err, hint)
}

// validate checks the decoded file against the format and builds the Model.
func (f *file) validate() (*RowModel, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidModel}, args...)...)
	}
	features, err := values("features", f.features)
	if err != nil {
		return nil, err
	}
	n := len(features)
	if n == 0 {
		return nil, bad("features: required, a non-empty array of names")
	}
	seen := make(map[string]bool, n)
	for j, name := range features {
		if name == "" {
			return nil, bad("features[%d]: empty name", j)
		}
		if seen[name] {
			return nil, bad("features[%d]: %q listed more than once", j, name)
		}
		seen[name] = true
	}
	if f.coefficients == nil {
		return nil, bad("coefficients: required, one per feature")
	}
	if f.intercept == nil {
		return nil, bad("intercept: required")
	}
	if !finite(*f.intercept) {
		return nil, bad("intercept: %v is not finite", *f.intercept)
	}
	m := &RowModel{link: LinkLogistic, features: features, intercept: *f.intercept}
	vectors := []struct {
		key string
		raw []*float64
		dst *[]float64
	}{
		{"coefficients", f.coefficients, &m.coef},
		{"mean", f.mean, &m.mean},
		{"scale", f.scale, &m.scale},
		{"impute", f.impute, &m.impute},
	}
	for _, vec := range vectors {
		v, err := values(vec.key, vec.raw)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		if len(v) != n {
			return nil, bad("%s: length %d, want %d (one per feature)", vec.key, len(v), n)
		}
		for j, x := range v {
			if !finite(x) {
				return nil, bad("%s[%d] (%s): %v is not finite", vec.key, j, features[j], x)
			}
		}
		*vec.dst = v
	}
	if (m.mean == nil) != (m.scale == nil) {
		return nil, bad("mean and scale: give both (standardisation) or neither")
	}
	for j, s := range m.scale {
		if s == 0 {
			return nil, bad("scale[%d] (%s): must not be 0", j, features[j])
		}
	}
	if f.model != nil {
		m.algorithm = *f.model
	}
	if f.link != nil {
		switch *f.link {
		case LinkLogistic, LinkIdentity:
			m.link = *f.link
		default:
			return nil, bad("link: %q; want %q or %q", *f.link, LinkLogistic, LinkIdentity)
		}
	}
	if m.impute == nil {
		m.impute = make([]float64, n)
		copy(m.impute, m.mean) // no-op without standardisation: impute 0
	}
	m.missing = make([]float64, n)
	for j := range m.missing {
		m.missing[j] = m.term(j, m.impute[j])
		if !finite(m.missing[j]) {
			return nil, bad("impute[%d] (%s): the imputed term coefficient*(impute-mean)/scale overflows", j, features[j])
		}
	}
	return m, nil
}

// values dereferences a decoded array; nil (absent or null) stays nil, and a
// null element is an error naming key and index.
func values[T any](key string, ps []*T) ([]T, error) {
	if ps == nil {
		return nil, nil
	}
	out := make([]T, len(ps))
	for i, p := range ps {
		if p == nil {
			return nil, fmt.Errorf("%w: %s[%d]: null", ErrInvalidModel, key, i)
		}
		out[i] = *p
	}
	return out, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// term is coef_j * z_j for the raw value v of feature j: the arithmetic of
// Margin, spelt out once for precomputing missing values.
func (m *RowModel) term(j int, v float64) float64 {
	if m.mean != nil {
		v = (v - m.mean[j]) / m.scale[j]
	}
	return m.coef[j] * v
}

// Build is the models.Builder of this kind. It reads the linear.json file
// named by the spec's file key (required). The spec's features key, when
// present, must name the same features as the file, in any order; rows are
// laid out in the file's order (Features) either way. Params are not used.
func Build(_ context.Context, _ models.Env, v models.Version) (models.Model, error) {
	if v.Spec.File == "" {
		return nil, fmt.Errorf("file is required: the linear.json model file, relative to %s", v.Dir)
	}
	path, err := models.Path(v.Dir, v.Spec.File)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkFeatures(m.features, v.Spec.Features, v.Spec.File); err != nil {
		return nil, err
	}
	return m, nil
}

// checkFeatures reports how the names listed in model.yaml (none is fine)
// differ from the model file's: repeated, unknown to the file, or missing.
func checkFeatures(have, listed []string, file string) error {
	if len(listed) == 0 {
		return nil
	}
	counts := make(map[string]int, len(listed))
	var dups []string
	for _, name := range listed {
		counts[name]++
		if counts[name] == 2 {
			dups = append(dups, name)
		}
	}
	if len(dups) > 0 {
		return fmt.Errorf("features: model.yaml lists %s more than once", strings.Join(dups, ", "))
	}
	known := make(map[string]bool, len(have))
	for _, name := range have {
		known[name] = true
	}
	var unknown, missing []string
	for _, name := range listed {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	for _, name := range have {
		if counts[name] == 0 {
			missing = append(missing, name)
		}
	}
	var problems []string
	if len(unknown) > 0 {
		problems = append(problems, fmt.Sprintf("model.yaml lists %s not in %s", strings.Join(unknown, ", "), file))
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("model.yaml omits %s", strings.Join(missing, ", ")))
	}
	if len(problems) > 0 {
		return fmt.Errorf("features: %s; %s expects %s", strings.Join(problems, "; "), file, strings.Join(have, ", "))
	}
	return nil
}

// Features returns the ordered feature names of a row: x[j] of PredictRow is
// the value of Features()[j]. The slice must not be modified.
func (m *RowModel) Features() []string { return m.features }

// NumOutputs is the number of values PredictRow writes: always 1.
func (m *RowModel) NumOutputs() int { return 1 }

// Algorithm returns the file's informational "model" key, such as
// logistic_regression or linear_svm; "" when absent.
func (m *RowModel) Algorithm() string { return m.algorithm }

// Link returns LinkLogistic or LinkIdentity.
func (m *RowModel) Link() string { return m.link }

// Probabilities reports whether predictions are probabilities (the logistic
// link), so that log loss means something.
func (m *RowModel) Probabilities() bool { return m.link == "logistic" }

// Margin returns intercept + Σ coefficients_j * z_j for row x (laid out as
// Features()). NaN marks a missing value, as do features beyond len(x);
// values beyond the model's features are ignored. An infinite input gives an
// infinite or NaN margin; nothing panics.
func (m *RowModel) Margin(x []float64) float64 {
	n := min(len(x), len(m.coef))
	x = x[:n]
	coef, missing := m.coef[:n], m.missing[:n]
	var s float64
	if m.mean != nil {
		mean, scale := m.mean[:n], m.scale[:n]
		for j, v := range x {
			if math.IsNaN(v) {
				s += missing[j]
				continue
			}
			// As term; the conversion forbids fusing into an FMA, so a
			// present value equal to impute_j adds exactly missing[j].
			s += float64(coef[j] * ((v - mean[j]) / scale[j]))
		}
	} else {
		for j, v := range x {
			if math.IsNaN(v) {
				s += missing[j]
				continue
			}
			s += float64(coef[j] * v)
		}
	}
	for _, t := range m.missing[n:] {
		s += t
	}
	return s + m.intercept
}

// Predict returns the output for row x: the margin through the link.
func (m *RowModel) Predict(x []float64) float64 {
	margin := m.Margin(x)
	if m.link == LinkIdentity {
		return margin
	}
	return sigmoid(margin)
}

// PredictRow writes Predict(x) to out[0]; any further elements of out become
// NaN, and an empty out is left alone.
func (m *RowModel) PredictRow(x []float64, out []float64) {
	if len(out) == 0 {
		return
	}
	out[0] = m.Predict(x)
	for i := 1; i < len(out); i++ {
		out[i] = math.NaN()
	}
}

// Close implements models.Model; the model holds no resources.
func (m *RowModel) Close() error { return nil }

// sigmoid is 1/(1+exp(-v)) computed without overflow: exp is only ever taken
// of a non-positive number. It maps ±Inf to 1 and 0, and NaN to NaN.
func sigmoid(v float64) float64 {
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}
