package onnx

import (
	"cmp"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/training/datagen"
)

// TestTrainedModelsMatchPyTorch trains each of our neural recommenders (one
// epoch, on a small generated data set) with the real PyTorch trainers, loads
// the exported version directory with the onnx kind, and checks that
// onnxruntime's outputs for the trainer's parity rows (parity.json: inputs and
// PyTorch's own outputs) agree within a relative error of 1e-4, and that the
// input the Go side builds from each parity user's history is exactly the row
// the trainer fed PyTorch.
func TestTrainedModelsMatchPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("trains PyTorch models")
	}
	lib, err := FindLibrary()
	if err != nil {
		t.Skipf("onnxruntime library not found (make ort): %v", err)
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import torch, onnx").Run(); err != nil {
		t.Skipf("%s lacks torch/onnx (make pydeps): %v", python, err)
	}
	rt, err := NewRuntime(lib)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	d, err := datagen.Generate(datagen.Config{Users: 300, Items: 120, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := dataset.Write(data, d); err != nil {
		t.Fatal(err)
	}
	// Each user's history as the store holds it: time order, ties in file
	// order.
	histories := map[string][]dataset.Interaction{}
	for _, in := range d.Interactions {
		histories[in.UserID] = append(histories[in.UserID], in)
	}
	for _, h := range histories {
		slices.SortStableFunc(h, func(a, b dataset.Interaction) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	}
	for _, script := range []string{"train_ae.py", "train_cnn.py", "train_rnn.py"} {
		t.Run(script, func(t *testing.T) {
			out := filepath.Join(dir, "repo", script, "1")
			cmd := exec.Command(python, filepath.Join("..", "..", "training", "python", script),
				"--data", data, "--out", out, "--epochs", "1")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", script, err, b)
			}
			spec, err := models.ReadSpec(out)
			if err != nil {
				t.Fatal(err)
			}
			m, err := build(t.Context(), rt, models.Env{}, models.Version{Name: script, ID: "1", Dir: out, Spec: spec})
			if err != nil {
				t.Fatalf("load %s: %v", out, err)
			}
			defer m.Close()
			b, err := os.ReadFile(filepath.Join(out, "parity.json"))
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Inputs  [][]float64 `json:"inputs"`
				Outputs [][]float64 `json:"outputs"`
			}
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			if len(p.Inputs) < 2 || len(p.Inputs) != len(p.Outputs) {
				t.Fatalf("parity.json has %d inputs, %d outputs; want a batch of at least 2", len(p.Inputs), len(p.Outputs))
			}
			var users []*string
			if b, err := os.ReadFile(filepath.Join(out, "parity_users.json")); err != nil {
				t.Fatal(err)
			} else if err := json.Unmarshal(b, &users); err != nil || len(users) != len(p.Inputs) {
				t.Fatalf("parity_users.json: %d users for %d rows, %v", len(users), len(p.Inputs), err)
			}
			var got [][]float32
			switch c := m.(*Ranker).core.(type) {
			case *rankCore[float32]:
				checkRows(t, c.row, users, p.Inputs, histories)
				got, err = c.s.run(t.Context(), convert[float32](p.Inputs))
			case *rankCore[int64]:
				checkRows(t, c.row, users, p.Inputs, histories)
				got, err = c.s.run(t.Context(), convert[int64](p.Inputs))
			default:
				t.Fatalf("unexpected core %T", c)
			}
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for r := range p.Outputs {
				if len(got[r]) != len(p.Outputs[r]) {
					t.Fatalf("row %d: %d outputs; PyTorch %d", r, len(got[r]), len(p.Outputs[r]))
				}
				for j, want := range p.Outputs[r] {
					g := float64(got[r][j])
					if !closeTo(g, want) {
						t.Fatalf("row %d item %d: onnxruntime %.7g; PyTorch %.7g", r, j, g, want)
					}
					worst = max(worst, relErr(g, want))
				}
			}
			t.Logf("%s (%s): %d rows × %d items, max relative error %.2g", script, spec.Signature, len(got), len(got[0]), worst)
		})
	}
}

// checkRows checks that the input the Go side builds from a user's history
// is the row the trainer fed PyTorch for that user (parity_users.json names
// the user of each parity row; null rows are synthetic).
func checkRows[T float32 | int64](t *testing.T, row func(*models.Query) ([]T, bool), users []*string,
	inputs [][]float64, histories map[string][]dataset.Interaction) {
	t.Helper()
	checked := 0
	for r, u := range users {
		if u == nil {
			continue
		}
		got, _ := row(&models.Query{UserID: *u, History: histories[*u]})
		if len(got) != len(inputs[r]) {
			t.Fatalf("user %s: Go builds %d inputs; the trainer fed %d", *u, len(got), len(inputs[r]))
		}
		for j := range got {
			if float64(got[j]) != inputs[r][j] {
				t.Fatalf("user %s: input[%d] = %v in Go; the trainer fed %v", *u, j, got[j], inputs[r][j])
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("no parity row names a user")
	}
}

func convert[T float32 | int64](rows [][]float64) [][]T {
	out := make([][]T, len(rows))
	for i, r := range rows {
		out[i] = make([]T, len(r))
		for j, v := range r {
			out[i][j] = T(v)
		}
	}
	return out
}

// closeTo reports |got-want| <= 1e-4 × max(1, |want|).
func closeTo(got, want float64) bool { return relErr(got, want) <= 1e-4 }

func relErr(got, want float64) float64 {
	d := got - want
	if d < 0 {
		d = -d
	}
	w := want
	if w < 0 {
		w = -w
	}
	return d / max(1, w)
}
