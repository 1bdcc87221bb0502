package onnx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/builtin"
	"github.com/recserve/recserve/models/onnx"
)

// The fixtures are written by training/python/onnx_fixtures.py: ten items
// i01..i10 and the tiny models it documents; expected.json holds torch's
// outputs on fixed inputs.

// newRuntime loads onnxruntime for one test, or skips the test when the
// library is not installed.
func newRuntime(t testing.TB) *onnx.Runtime {
	t.Helper()
	path := libraryOrSkip(t)
	rt, err := onnx.NewRuntime(path)
	if err != nil {
		t.Fatalf("NewRuntime(%s) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("Runtime.Close() = %v", err)
		}
	})
	return rt
}

// libraryOrSkip returns the onnxruntime library, or skips the test when it
// is not installed.
func libraryOrSkip(t testing.TB) string {
	t.Helper()
	path, err := onnx.FindLibrary()
	if err == nil {
		_, err = os.Stat(path)
	}
	if err != nil {
		t.Skipf("onnxruntime library not found (run `make ort` or set %s): %v", onnx.LibraryEnv, err)
	}
	return path
}

// version copies testdata files into a fresh version directory described by
// spec.
func version(t testing.TB, spec models.Spec, files ...string) models.Version {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec.Kind = onnx.Kind
	return models.Version{Name: "m", ID: "1", Dir: dir, Spec: spec}
}

// load builds v with rt and closes the model at the end of the test.
func load(t testing.TB, rt *onnx.Runtime, v models.Version) models.Model {
	t.Helper()
	m, err := onnx.Builder(rt)(context.Background(), models.Env{}, v)
	if err != nil {
		t.Fatalf("load %s: %v", v.Spec.File, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return m
}

// expected is expected.json: torch's inputs and outputs per model.
type expected map[string]struct {
	Inputs  [][]float64 `json:"inputs"`
	Outputs json.RawMessage
}

func readExpected(t testing.TB) expected {
	t.Helper()
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// rows decodes an outputs entry of rank 2.
func rows(t testing.TB, raw json.RawMessage) [][]float64 {
	t.Helper()
	var r [][]float64
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// closeTo reports |got-want| <= 1e-4 × max(1, |want|).
func closeTo(got, want float64) bool {
	return math.Abs(got-want) <= 1e-4*math.Max(1, math.Abs(want))
}

func allItems() []string {
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = fmt.Sprintf("i%02d", i+1)
	}
	return ids
}

func uvSpec(params map[string]any) models.Spec {
	return models.Spec{File: "user_vector.onnx", Items: "items.txt", Signature: onnx.UserVector, Params: params}
}

func seqSpec(params map[string]any) models.Spec {
	return models.Spec{File: "sequence.onnx", Items: "items.txt", Signature: onnx.Sequence, Params: params}
}

// history turns (item, event) pairs into a history.
func history(pairs ...any) []dataset.Interaction {
	var h []dataset.Interaction
	for i := 0; i < len(pairs); i += 2 {
		h = append(h, dataset.Interaction{UserID: "u", ItemID: pairs[i].(string), Event: pairs[i+1].(dataset.Event), Value: 1, Timestamp: int64(i)})
	}
	return h
}

func TestUserVectorMatchesTorch(t *testing.T) {
	rt := newRuntime(t)
	m := load(t, rt, version(t, uvSpec(nil), "user_vector.onnx", "items.txt")).(models.Scorer)
	want := rows(t, readExpected(t)["user_vector"].Outputs)
	// The histories whose user_vector rows are expected.json's inputs:
	// i01 viewed (1) and i04 purchased (5); i10 carted (3); nothing.
	users := [][]dataset.Interaction{
		history("i01", dataset.View, "i04", dataset.Purchase),
		history("i10", dataset.Cart, "unknown", dataset.Purchase),
		nil,
	}
	for u, h := range users {
		got, err := m.Score(t.Context(), models.Query{History: h}, allItems())
		if err != nil {
			t.Fatalf("Score(user %d) = %v", u, err)
		}
		for i := range got {
			if !closeTo(got[i], want[u][i]) {
				t.Errorf("user %d: Score(%s) = %.7g; torch %.7g", u, allItems()[i], got[i], want[u][i])
			}
		}
	}
}

func TestSequenceMatchesTorch(t *testing.T) {
	rt := newRuntime(t)
	e := readExpected(t)["sequence"]
	want := rows(t, e.Outputs)
	// Histories giving expected.json's inputs [0 0 1 2 3], [0 0 0 0 10],
	// [4 4 5 6 7] (repeats: dedupe off), [0 0 0 0 0].
	tests := []struct {
		params map[string]any
		h      []dataset.Interaction
	}{
		{nil, history("i01", dataset.View, "i02", dataset.Cart, "i03", dataset.Purchase)},
		{nil, history("i10", dataset.View, "i10", dataset.View, "nope", dataset.View)},
		{map[string]any{"dedupe_consecutive": false}, history("i09", dataset.View, "i04", dataset.View, "i04", dataset.View, "i05", dataset.View, "i06", dataset.View, "i07", dataset.View)},
		{nil, history("i03", dataset.Rating)},
	}
	for u, tt := range tests {
		for _, file := range []string{"sequence.onnx", "sequence_dyn.onnx"} {
			spec := seqSpec(tt.params)
			spec.File = file
			if file == "sequence_dyn.onnx" {
				if spec.Params == nil {
					spec.Params = map[string]any{}
				}
				spec.Params["max_len"] = 5
			}
			m := load(t, rt, version(t, spec, file, "items.txt")).(models.Scorer)
			got, err := m.Score(t.Context(), models.Query{History: tt.h}, allItems())
			if err != nil {
				t.Fatalf("%s: Score(user %d) = %v", file, u, err)
			}
			for i := range got {
				if !closeTo(got[i], want[u][i]) {
					t.Errorf("%s user %d (input %v): Score(%s) = %.7g; torch %.7g", file, u, e.Inputs[u], allItems()[i], got[i], want[u][i])
				}
			}
		}
	}
}

func TestFeaturesMatchTorch(t *testing.T) {
	rt := newRuntime(t)
	e := readExpected(t)["features"]
	var want []float64
	if err := json.Unmarshal(e.Outputs, &want); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"features.onnx", "features_col.onnx"} {
		t.Run(file, func(t *testing.T) {
			m := load(t, rt, version(t, models.Spec{File: file, Signature: onnx.Features, Features: []string{"a", "b", "c"}}, file))
			rm, ok := m.(models.RowModel)
			if !ok {
				t.Fatalf("%T is not a models.RowModel", m)
			}
			if got := rm.Features(); !reflect.DeepEqual(got, []string{"a", "b", "c"}) || rm.NumOutputs() != 1 {
				t.Errorf("Features() = %v, NumOutputs() = %d; want [a b c], 1", got, rm.NumOutputs())
			}
			if _, ok := m.(models.Scorer); ok {
				t.Errorf("a features model is a Scorer before binding to a feature pipeline")
			}
			var xs []float64
			for _, r := range e.Inputs {
				xs = append(xs, r...)
			}
			block := make([]float64, len(want))
			m.(models.RowBatcher).PredictRows(xs, block)
			for i := range want {
				one := []float64{0}
				rm.PredictRow(e.Inputs[i], one)
				if !closeTo(block[i], want[i]) || !closeTo(one[0], want[i]) {
					t.Errorf("row %v: PredictRows = %.7g, PredictRow = %.7g; torch %.7g", e.Inputs[i], block[i], one[0], want[i])
				}
			}
		})
	}
}

// fakeFeatures binds any names; row i's values are i+1, i+2, ...
type fakeFeatures struct{}

func (fakeFeatures) Bind(names []string) (models.Featurizer, error) {
	if slices.Contains(names, "unknown") {
		return nil, errors.New("no feature named unknown")
	}
	return fakeRows(len(names)), nil
}

type fakeRows int

func (w fakeRows) Rows(_ models.Query, itemIDs []string, dst []float64) error {
	for i := range itemIDs {
		for j := range int(w) {
			dst[i*int(w)+j] = float64(i + j + 1)
		}
	}
	return nil
}

// TestFeaturesScorerThroughPipeline loads a features model the way the
// server does (Kinds.Build with a feature pipeline): it gains the Scorer role.
func TestFeaturesScorerThroughPipeline(t *testing.T) {
	rt := newRuntime(t)
	kinds := builtin.Registry(builtin.WithONNX(rt, nil))
	v := version(t, models.Spec{File: "features.onnx", Signature: onnx.Features, Features: []string{"a", "b", "c"}}, "features.onnx")
	m, err := kinds.Build(t.Context(), models.Env{Features: fakeFeatures{}}, v)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, ok := m.(models.Scorer)
	if !ok {
		t.Fatalf("%T: not a Scorer", m)
	}
	got, err := s.Score(t.Context(), models.Query{UserID: "u"}, []string{"x", "y"})
	if err != nil {
		t.Fatal(err)
	}
	rm := m.(models.RowModel)
	for i, row := range [][]float64{{1, 2, 3}, {2, 3, 4}} {
		want := []float64{0}
		rm.PredictRow(row, want)
		if got[i] != want[0] || math.IsNaN(got[i]) {
			t.Errorf("Score item %d = %v; PredictRow(%v) = %v", i, got[i], row, want[0])
		}
	}

	v.Spec.Features = []string{"a", "b", "unknown"}
	if m, err := kinds.Build(t.Context(), models.Env{Features: fakeFeatures{}}, v); err == nil {
		m.Close()
		t.Errorf("Build with a feature the pipeline lacks = nil error")
	}
}

func TestRecommend(t *testing.T) {
	rt := newRuntime(t)
	for _, spec := range []models.Spec{uvSpec(nil), seqSpec(nil)} {
		t.Run(spec.Signature, func(t *testing.T) {
			m := load(t, rt, version(t, spec, spec.File, "items.txt"))
			rec, sc := m.(models.Recommender), m.(models.Scorer)
			h := history("i01", dataset.View, "i04", dataset.Purchase)
			scores, err := sc.Score(t.Context(), models.Query{History: h}, allItems())
			if err != nil {
				t.Fatal(err)
			}
			// The reference ranking: every item by score, best first.
			ranked := allItems()
			slices.SortStableFunc(ranked, func(a, b string) int {
				sa, sb := scores[slices.Index(allItems(), a)], scores[slices.Index(allItems(), b)]
				switch {
				case sa > sb:
					return -1
				case sa < sb:
					return 1
				}
				return strings.Compare(a, b)
			})
			deny := map[string]bool{ranked[0]: true, ranked[2]: true}
			tests := []struct {
				name  string
				k     int
				allow func(string) bool
				want  []string
			}{
				{"top 3", 3, nil, ranked[:3]},
				{"all", 10, nil, ranked},
				{"more than the vocabulary", 50, nil, ranked},
				{"allow filters without shrinking", 3, func(id string) bool { return !deny[id] }, []string{ranked[1], ranked[3], ranked[4]}},
				{"nothing allowed", 3, func(string) bool { return false }, nil},
				{"k 0", 0, nil, nil},
			}
			for _, tt := range tests {
				got, err := rec.Recommend(t.Context(), models.Query{History: h, K: tt.k, Allow: tt.allow})
				if err != nil {
					t.Fatalf("%s: Recommend = %v", tt.name, err)
				}
				var ids []string
				for i, s := range got {
					ids = append(ids, s.ItemID)
					if want := scores[slices.Index(allItems(), s.ItemID)]; s.Score != want {
						t.Errorf("%s: item %d %s score %v; Score says %v", tt.name, i, s.ItemID, s.Score, want)
					}
				}
				if !slices.Equal(ids, tt.want) {
					t.Errorf("%s: Recommend(K=%d) = %v; want %v", tt.name, tt.k, ids, tt.want)
				}
			}
			// Cold start: no vocabulary item in the history, no answer (the
			// route's fallback answers), but Score still scores.
			cold := models.Query{History: history("zz", dataset.View), K: 5}
			if got, err := rec.Recommend(t.Context(), cold); err != nil || len(got) != 0 {
				t.Errorf("Recommend(cold) = %v, %v; want empty, nil", got, err)
			}
			got, err := sc.Score(t.Context(), cold, []string{"i01", "not-in-vocab"})
			if err != nil {
				t.Fatal(err)
			}
			all, _ := sc.Score(t.Context(), cold, allItems())
			if got[1] != slices.Min(all) {
				t.Errorf("Score(item outside the vocabulary) = %v; want the lowest score %v", got[1], slices.Min(all))
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if _, err := rec.Recommend(ctx, models.Query{History: h, K: 3}); !errors.Is(err, context.Canceled) {
				t.Errorf("Recommend(cancelled) = %v; want context.Canceled", err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	rt := newRuntime(t)
	nineItems := func(v models.Version) {
		if err := os.WriteFile(filepath.Join(v.Dir, "items.txt"), []byte(strings.Join(allItems()[:9], "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	threeItems := func(v models.Version) {
		if err := os.WriteFile(filepath.Join(v.Dir, "items.txt"), []byte("a\nb\nc\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		spec  models.Spec
		files []string
		edit  func(models.Version)
		want  []string // substrings of the error
	}{
		{"wrong input name", models.Spec{File: "user_vector.onnx", Items: "items.txt", Signature: onnx.UserVector, Inputs: []string{"hist"}},
			[]string{"user_vector.onnx", "items.txt"}, nil, []string{`input "hist": not in the model`, "history"}},
		{"wrong output name", models.Spec{File: "user_vector.onnx", Items: "items.txt", Signature: onnx.UserVector, Outputs: []string{"logits"}},
			[]string{"user_vector.onnx", "items.txt"}, nil, []string{`output "logits": not in the model`, "scores"}},
		{"two inputs named", models.Spec{File: "user_vector.onnx", Items: "items.txt", Signature: onnx.UserVector, Inputs: []string{"history", "x"}},
			[]string{"user_vector.onnx", "items.txt"}, nil, []string{"names 2 tensors"}},
		{"wrong element type", seqSpec(nil), []string{"items.txt"}, func(v models.Version) {
			b, _ := os.ReadFile("testdata/user_vector.onnx")
			os.WriteFile(filepath.Join(v.Dir, "sequence.onnx"), b, 0o644)
		}, []string{`input "history": wrong element type: want int64 [B, ?], got float32 [B, 10]`}},
		{"wrong rank", models.Spec{File: "features.onnx", Items: "items.txt", Signature: onnx.UserVector},
			[]string{"features.onnx", "items.txt"}, threeItems, []string{`output "p": wrong rank: want float32 [B, 3], got float32 [B]`}},
		{"vocabulary size mismatch", uvSpec(nil), []string{"user_vector.onnx", "items.txt"}, nineItems,
			[]string{`input "history"`, "dimension 1 is 10 but the vocabulary size (items) is 9", "want float32 [B, 9], got float32 [B, 10]"}},
		{"wrong output shape", models.Spec{File: "wrong_shape.onnx", Items: "items.txt", Signature: onnx.UserVector},
			[]string{"wrong_shape.onnx", "items.txt"}, nil, []string{`output "scores"`, "dimension 1 is 9 but the vocabulary size (items) is 10"}},
		{"features count mismatch", models.Spec{File: "features.onnx", Signature: onnx.Features, Features: []string{"a", "b"}},
			[]string{"features.onnx"}, nil, []string{`input "x"`, "dimension 1 is 3 but the number of features listed in model.yaml is 2"}},
		{"features model with a wide output", models.Spec{File: "user_vector.onnx", Signature: onnx.Features, Features: allItems()},
			[]string{"user_vector.onnx"}, nil, []string{`output "scores"`, "want float32 [B] or float32 [B, 1], got float32 [B, 10]"}},
		{"max_len disagrees with the model", seqSpec(map[string]any{"max_len": 7}), []string{"sequence.onnx", "items.txt"}, nil,
			[]string{`input "items"`, "dimension 1 is 5 but the params.max_len is 7"}},
		{"dynamic length without max_len", models.Spec{File: "sequence_dyn.onnx", Items: "items.txt", Signature: onnx.Sequence},
			[]string{"sequence_dyn.onnx", "items.txt"}, nil, []string{`input "items": the sequence length is dynamic`, "params.max_len"}},
		{"NaN outputs", models.Spec{File: "nan.onnx", Items: "items.txt", Signature: onnx.UserVector},
			[]string{"nan.onnx", "items.txt"}, nil, []string{"warm-up", `output "scores"`, "NaN", "finite"}},
		{"no items", models.Spec{File: "user_vector.onnx", Signature: onnx.UserVector}, []string{"user_vector.onnx"}, nil, []string{"items is required"}},
		{"no features", models.Spec{File: "features.onnx", Signature: onnx.Features}, []string{"features.onnx"}, nil, []string{"features is required"}},
		{"duplicate feature", models.Spec{File: "features.onnx", Signature: onnx.Features, Features: []string{"a", "a", "b"}}, []string{"features.onnx"}, nil, []string{`"a" is empty or listed twice`}},
		{"no file", models.Spec{Items: "items.txt", Signature: onnx.UserVector}, []string{"items.txt"}, nil, []string{"file is required"}},
		{"missing file", uvSpec(nil), []string{"items.txt"}, nil, []string{"user_vector.onnx"}},
		{"escaping file", models.Spec{File: "../user_vector.onnx", Items: "items.txt", Signature: onnx.UserVector}, []string{"items.txt"}, nil, []string{"escapes"}},
		{"not an onnx file", models.Spec{File: "items.txt", Items: "items.txt", Signature: onnx.UserVector}, []string{"items.txt"}, nil, []string{"read the model's inputs and outputs"}},
		{"unknown param", uvSpec(map[string]any{"batch": 8}), []string{"user_vector.onnx", "items.txt"}, nil, []string{"unknown key(s) batch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := version(t, tt.spec, tt.files...)
			if tt.edit != nil {
				tt.edit(v)
			}
			m, err := onnx.Builder(rt)(t.Context(), models.Env{}, v)
			if err == nil {
				m.Close()
				t.Fatalf("load = nil error; want one containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("load error = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestMissingLibrary(t *testing.T) {
	_, err := onnx.NewRuntime(filepath.Join(t.TempDir(), "libonnxruntime.so.1"))
	if !errors.Is(err, onnx.ErrNoLibrary) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("NewRuntime(missing) = %v; want ErrNoLibrary naming the missing file", err)
	}
	notLib := filepath.Join(t.TempDir(), "lib.so")
	os.WriteFile(notLib, []byte("not a library"), 0o644)
	if rt, err := onnx.NewRuntime(notLib); !errors.Is(err, onnx.ErrNoLibrary) {
		if rt != nil {
			rt.Close()
		}
		t.Errorf("NewRuntime(not a library) = %v; want ErrNoLibrary", err)
	}
	t.Setenv(onnx.LibraryEnv, "/nowhere/libonnxruntime.so.1")
	if p, err := onnx.FindLibrary(); p != "/nowhere/libonnxruntime.so.1" || err != nil {
		t.Errorf("FindLibrary() with %s set = %q, %v; want the variable's value", onnx.LibraryEnv, p, err)
	}
	if _, err := onnx.Open(); !errors.Is(err, onnx.ErrNoLibrary) {
		t.Errorf("Open() with a missing library = %v; want ErrNoLibrary", err)
	}

	// Without a runtime the onnx kind fails with the fix in the message, and
	// the Go-native kinds are still registered.
	v := version(t, uvSpec(nil), "user_vector.onnx", "items.txt")
	for name, kinds := range map[string]*models.Registry{
		"no option":    builtin.Registry(),
		"load failure": builtin.Registry(builtin.WithONNX(nil, fmt.Errorf("%w: /x/lib.so: no such file", onnx.ErrNoLibrary))),
	} {
		_, err := kinds.Build(t.Context(), models.Env{}, v)
		if !errors.Is(err, onnx.ErrNoLibrary) || !strings.Contains(err.Error(), "onnx: onnxruntime library not loaded (") ||
			!strings.Contains(err.Error(), "run `make ort` or set ONNXRUNTIME_LIB") {
			t.Errorf("%s: Build(onnx) = %v; want ErrNoLibrary with the fix", name, err)
		}
		if !slices.Contains(kinds.Names(), "gbm") || !slices.Contains(kinds.Names(), "onnx") {
			t.Errorf("%s: kinds = %v; want gbm and onnx", name, kinds.Names())
		}
	}
	if _, err := builtin.Registry(builtin.WithONNX(nil, errors.New("dlopen failed: bad ELF"))).Build(t.Context(), models.Env{}, v); err == nil || !strings.Contains(err.Error(), "(dlopen failed: bad ELF)") {
		t.Errorf("Build(onnx) = %v; want the load failure's reason", err)
	}
}

// TestRuntimeShared checks that runtimes share onnxruntime's one
// environment: two at once, a model outliving the runtime that built it,
// and a new environment after the last one was destroyed.
func TestRuntimeShared(t *testing.T) {
	path := libraryOrSkip(t)
	for round := range 2 {
		a, err := onnx.NewRuntime(path)
		if err != nil {
			t.Fatalf("round %d: first NewRuntime = %v", round, err)
		}
		b, err := onnx.NewRuntime(path)
		if err != nil {
			t.Fatalf("round %d: second NewRuntime = %v", round, err)
		}
		if a.Version() == "" || a.Version() != b.Version() || !strings.HasPrefix(a.Version(), "1.24") {
			t.Errorf("versions %q, %q; want equal 1.24.x", a.Version(), b.Version())
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("second Close() = %v", err)
		}
		if _, err := onnx.Builder(a)(t.Context(), models.Env{}, version(t, uvSpec(nil), "user_vector.onnx", "items.txt")); !errors.Is(err, onnx.ErrNoLibrary) {
			t.Errorf("Build on a closed runtime = %v; want ErrNoLibrary", err)
		}
		m, err := onnx.Builder(b)(t.Context(), models.Env{}, version(t, uvSpec(nil), "user_vector.onnx", "items.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		// The model keeps the environment alive after its runtime closed.
		if _, err := m.(models.Scorer).Score(t.Context(), models.Query{History: history("i01", dataset.View)}, []string{"i02"}); err != nil {
			t.Errorf("Score after the runtime closed = %v", err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	os.WriteFile(other, []byte("x"), 0o644)
	a := newRuntime(t)
	if _, err := onnx.NewRuntime(other); err == nil || !strings.Contains(err.Error(), "already loaded from") {
		t.Errorf("NewRuntime(another library) while %s is loaded = %v; want an error", a.Path(), err)
	}
}

// TestConcurrentRecommend runs many goroutines on one session (run it with
// -race), with and without batching, and checks every answer equals the
// sequential one.
func TestConcurrentRecommend(t *testing.T) {
	rt := newRuntime(t)
	users := [][]dataset.Interaction{
		history("i01", dataset.View),
		history("i02", dataset.Cart, "i03", dataset.View),
		history("i10", dataset.Purchase, "i09", dataset.View, "i08", dataset.View),
		history("i05", dataset.View, "i05", dataset.Cart, "i06", dataset.Purchase),
	}
	for _, batching := range []map[string]any{nil, {"max_batch_size": 4, "max_queue_delay_us": 200, "runners": 2}} {
		for _, spec := range []models.Spec{uvSpec(batching), seqSpec(batching)} {
			t.Run(fmt.Sprintf("%s/batching=%v", spec.Signature, batching != nil), func(t *testing.T) {
				m := load(t, rt, version(t, spec, spec.File, "items.txt")).(models.Recommender)
				want := make([][]models.Scored, len(users))
				for u, h := range users {
					var err error
					if want[u], err = m.Recommend(t.Context(), models.Query{History: h, K: 4}); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				errs := make(chan error, 64)
				for g := range 16 {
					wg.Go(func() {
						for i := range 25 {
							u := (g + i) % len(users)
							got, err := m.Recommend(t.Context(), models.Query{History: users[u], K: 4})
							if err != nil {
								errs <- err
								return
							}
							if !reflect.DeepEqual(got, want[u]) {
								errs <- fmt.Errorf("goroutine %d user %d: %v; want %v", g, u, got, want[u])
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
			})
		}
	}
}

// TestCancelDuringRun cancels requests at random points around their Run
// (run it with -race): each answer is a result or the context's error, and
// the session keeps serving.
func TestCancelDuringRun(t *testing.T) {
	rt := newRuntime(t)
	m := load(t, rt, version(t, uvSpec(nil), "user_vector.onnx", "items.txt")).(models.Scorer)
	q := models.Query{History: history("i01", dataset.View)}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration((g*200+i)%40)*time.Microsecond)
				_, err := m.Score(ctx, q, allItems())
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Score = %v; want nil or DeadlineExceeded", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if _, err := m.Score(t.Context(), q, allItems()); err != nil {
		t.Errorf("Score after cancellations = %v", err)
	}
}

// TestBatchingEqualsDirect scores many users at once through a batching
// model and checks each answer against the same model run directly.
func TestBatchingEqualsDirect(t *testing.T) {
	rt := newRuntime(t)
	for _, sig := range []string{onnx.UserVector, onnx.Sequence, onnx.Features} {
		t.Run(sig, func(t *testing.T) {
			var direct, batched models.Model
			batchParams := map[string]any{"max_batch_size": 8, "max_queue_delay_us": 2000, "max_queue_size": 100, "runners": 1}
			switch sig {
			case onnx.UserVector:
				direct = load(t, rt, version(t, uvSpec(nil), "user_vector.onnx", "items.txt"))
				batched = load(t, rt, version(t, uvSpec(batchParams), "user_vector.onnx", "items.txt"))
			case onnx.Sequence:
				direct = load(t, rt, version(t, seqSpec(nil), "sequence.onnx", "items.txt"))
				batched = load(t, rt, version(t, seqSpec(batchParams), "sequence.onnx", "items.txt"))
			default:
				spec := models.Spec{File: "features.onnx", Signature: onnx.Features, Features: []string{"a", "b", "c"}}
				direct = load(t, rt, version(t, spec, "features.onnx"))
				spec.Params = batchParams
				batched = load(t, rt, version(t, spec, "features.onnx"))
			}
			const n = 40
			got := make([][]float64, n)
			want := make([][]float64, n)
			var wg sync.WaitGroup
			for u := range n {
				score := func(m models.Model) []float64 {
					if rm, ok := m.(models.RowBatcher); ok {
						x := []float64{float64(u), float64(u%7) - 3, 0.5 * float64(u%3)}
						out := make([]float64, 1)
						rm.PredictRows(x, out)
						return out
					}
					h := history(allItems()[u%10], dataset.View, allItems()[(u*3)%10], dataset.Cart, allItems()[(u*7)%10], dataset.Purchase)
					s, err := m.(models.Scorer).Score(t.Context(), models.Query{History: h}, allItems())
					if err != nil {
						t.Error(err)
					}
					return s
				}
				want[u] = score(direct)
				wg.Go(func() { got[u] = score(batched) })
			}
			wg.Wait()
			for u := range n {
				if len(got[u]) != len(want[u]) {
					t.Fatalf("user %d: batched %v; direct %v", u, got[u], want[u])
				}
				for i := range got[u] {
					if !closeTo(got[u][i], want[u][i]) || math.IsNaN(got[u][i]) {
						t.Errorf("user %d item %d: batched %v; direct %v", u, i, got[u][i], want[u][i])
					}
				}
			}
		})
	}
}

// TestOverloaded fills a batching model's queue: a request that does not
// fit fails at once with models.ErrOverloaded.
func TestOverloaded(t *testing.T) {
	rt := newRuntime(t)
	// Batches of up to 1000 rows that wait 10s to fill and a queue of one
	// request: of several concurrent requests, one waits (until its deadline)
	// and the others are refused at once.
	m := load(t, rt, version(t, uvSpec(map[string]any{"max_batch_size": 1000, "max_queue_delay_us": 10_000_000, "max_queue_size": 1, "runners": 1}), "user_vector.onnx", "items.txt")).(models.Scorer)
	q := models.Query{History: history("i01", dataset.View)}
	errs := make([]error, 8)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range errs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			_, errs[i] = m.Score(ctx, q, allItems())
		})
	}
	wg.Wait()
	overloaded := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, models.ErrOverloaded):
			overloaded++
		case errors.Is(err, context.DeadlineExceeded):
		default:
			t.Errorf("Score = %v; want ErrOverloaded or DeadlineExceeded", err)
		}
	}
	if overloaded == 0 {
		t.Errorf("no Score of %d on a one-request queue failed with models.ErrOverloaded: %v", len(errs), errs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("requests took %v; the deadlines are 300ms", d)
	}
}

// BenchmarkRun measures one Score of a single user (one Run of batch 1) and
// a block of 256 feature rows.
func BenchmarkRun(b *testing.B) {
	rt := newRuntime(b)
	for _, spec := range []models.Spec{uvSpec(nil), seqSpec(nil)} {
		b.Run(spec.Signature, func(b *testing.B) {
			m := load(b, rt, version(b, spec, spec.File, "items.txt")).(models.Scorer)
			q := models.Query{History: history("i01", dataset.View, "i04", dataset.Purchase)}
			items := allItems()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Score(context.Background(), q, items); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("features/256rows", func(b *testing.B) {
		m := load(b, rt, version(b, models.Spec{File: "features.onnx", Signature: onnx.Features, Features: []string{"a", "b", "c"}}, "features.onnx")).(models.RowBatcher)
		xs := make([]float64, 256*3)
		for i := range xs {
			xs[i] = float64(i % 11)
		}
		out := make([]float64, 256)
		b.ReportAllocs()
		for b.Loop() {
			m.PredictRows(xs, out)
		}
	})
}
