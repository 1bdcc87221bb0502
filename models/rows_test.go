package models_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// sumModel predicts the sum of its row; outputs > 1 repeats it.
type sumModel struct {
	names   []string
	outputs int
	closed  bool
}

func (m *sumModel) Close() error       { m.closed = true; return nil }
func (m *sumModel) Features() []string { return m.names }
func (m *sumModel) NumOutputs() int    { return m.outputs }
func (m *sumModel) PredictRow(x, out []float64) {
	var s float64
	for _, v := range x {
		s += v
	}
	for i := range out {
		out[i] = s
	}
}

// indexFeatures computes feature "a" as the item's index in the request and
// "b" as the history length; any other name is unknown.
type indexFeatures struct{}

func (indexFeatures) Bind(names []string) (models.Featurizer, error) {
	for _, n := range names {
		if n != "a" && n != "b" {
			return nil, fmt.Errorf("unknown feature %s", n)
		}
	}
	return indexRows{names}, nil
}

type indexRows struct{ names []string }

func (r indexRows) Rows(q models.Query, ids []string, dst []float64) error {
	for i, id := range ids {
		var n int
		fmt.Sscanf(id, "i%d", &n)
		for j, name := range r.names {
			v := float64(len(q.History))
			if name == "a" {
				v = float64(n)
			}
			dst[i*len(r.names)+j] = v
		}
	}
	return nil
}

func buildWith(t *testing.T, f models.Features, m models.Model) (models.Model, error) {
	t.Helper()
	k := models.NewRegistry()
	if err := k.Register("sum", func(context.Context, models.Env, models.Version) (models.Model, error) { return m, nil }); err != nil {
		t.Fatal(err)
	}
	return k.Build(t.Context(), models.Env{Features: f}, models.Version{Name: "s", ID: "1", Spec: models.Spec{Kind: "sum"}})
}

func TestRowModelBecomesScorer(t *testing.T) {
	m, err := buildWith(t, indexFeatures{}, &sumModel{names: []string{"a", "b", "a"}, outputs: 1})
	if err != nil {
		t.Fatal(err)
	}
	sc, ok := m.(models.Scorer)
	if !ok {
		t.Fatalf("a bound row model has roles %v; want scorer", models.Roles(m))
	}
	if _, ok := m.(models.RowModel); !ok {
		t.Errorf("the bound model no longer scores rows (recctl predict needs it)")
	}
	// 600 items span three internal chunks; request order must hold.
	ids := make([]string, 600)
	want := make([]float64, 600)
	for i := range ids {
		n := 599 - i
		ids[i] = fmt.Sprintf("i%d", n)
		want[i] = float64(2*n + 3) // a + b + a with a history of 3
	}
	q := models.Query{History: make([]dataset.Interaction, 3)}
	got, err := sc.Score(t.Context(), q, ids)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Score = %v...; want %v...", got[:3], want[:3])
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := sc.Score(ctx, q, ids); !errors.Is(err, context.Canceled) {
		t.Errorf("Score(cancelled) error = %v; want context.Canceled", err)
	}
}

func TestRowModelBinding(t *testing.T) {
	bad := &sumModel{names: []string{"a", "zz"}, outputs: 1}
	if _, err := buildWith(t, indexFeatures{}, bad); err == nil || !strings.Contains(err.Error(), "zz") {
		t.Errorf("Build(unknown feature) error = %v; want a load error naming zz", err)
	}
	if !bad.closed {
		t.Errorf("a model that fails to bind was not closed")
	}
	multi, err := buildWith(t, indexFeatures{}, &sumModel{names: []string{"a"}, outputs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := multi.(models.Scorer); ok {
		t.Errorf("a 3-output model became a scorer; which output is the score is undefined")
	}
	plain, err := buildWith(t, nil, &sumModel{names: []string{"zz"}, outputs: 1})
	if err != nil {
		t.Fatalf("Build without a pipeline: %v", err)
	}
	if _, ok := plain.(models.Scorer); ok {
		t.Errorf("a row model without a pipeline became a scorer")
	}
}
