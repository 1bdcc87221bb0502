package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/gbm"
	"github.com/recserve/recserve/training/predict"
)

// gbmTestdata holds the XGBoost fixtures: inputs.csv (header f0..f9, empty
// cell = missing) and, per model, NAME.json and NAME.pred.csv (XGBoost's own
// predictions, one row per input row).
const gbmTestdata = "../../models/gbm/testdata"

// gbmVersion writes a version directory for the fixture model name.
func gbmVersion(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(gbmTestdata, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "repo", name, "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := models.WriteSpec(dir, models.Spec{Kind: gbm.Kind, File: "model.json"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fixtureRows returns the first n input rows of the fixtures as raw cells
// (f0..f9) and the model's expected predictions for them.
func fixtureRows(t *testing.T, model string, n int) (cells [][]string, want [][]float64) {
	t.Helper()
	read := func(name string) []string {
		b, err := os.ReadFile(filepath.Join(gbmTestdata, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	in, pred := read("inputs.csv"), read(model+".pred.csv")
	if got := strings.TrimSpace(in[0]); got != "f0,f1,f2,f3,f4,f5,f6,f7,f8,f9" {
		t.Fatalf("inputs.csv header = %q; want f0..f9", got)
	}
	in = in[1:]
	if len(in) < n || len(pred) < n {
		t.Fatalf("fixtures have %d inputs, %d predictions; want %d", len(in), len(pred), n)
	}
	for i := range n {
		cells = append(cells, strings.Split(strings.TrimSpace(in[i]), ","))
		var row []float64
		for _, s := range strings.Split(strings.TrimSpace(pred[i]), ",") {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s.pred.csv:%d: %v", model, i+1, err)
			}
			row = append(row, v)
		}
		want = append(want, row)
	}
	return cells, want
}

// writeMessyCSV writes rows the way spreadsheets and hand edits produce them:
// a BOM, CRLF line ends, space around cells, the features in reverse order, an
// id column and an unrelated extra column.
func writeMessyCSV(t *testing.T, path string, cells [][]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("\uFEFF row , note ")
	for j := 9; j >= 0; j-- {
		fmt.Fprintf(&b, ", f%d ", j)
	}
	b.WriteString("\r\n")
	for i, row := range cells {
		fmt.Fprintf(&b, "r%d, \"a, b\"", i)
		for j := len(row) - 1; j >= 0; j-- {
			fmt.Fprintf(&b, ", %s ", row[j])
		}
		b.WriteString("\r\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readOutput(t *testing.T, path string) (header []string, rows [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s is empty", path)
	}
	return recs[0], recs[1:]
}

func TestPredictMatchesXGBoost(t *testing.T) {
	tests := []struct {
		model      string
		rows       int
		chunk      string // --chunk-rows
		workers    string
		wantHeader string
	}{
		{"binary", 300, "4096", "1", "row,prediction"},
		{"regression", 300, "4096", "2", "row,prediction"},
		{"multiclass", 300, "4096", "2", "row,p0,p1,p2"},
		// Many chunks in flight on several workers: output order must still
		// be input order.
		{"dart", 1000, "7", "4", "row,prediction"},
		{"multiclass", 1000, "13", "3", "row,p0,p1,p2"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/chunk=%s/workers=%s", tt.model, tt.chunk, tt.workers), func(t *testing.T) {
			dir := gbmVersion(t, tt.model)
			cells, want := fixtureRows(t, tt.model, tt.rows)
			in := filepath.Join(t.TempDir(), "features.csv")
			out := filepath.Join(t.TempDir(), "pred.csv")
			writeMessyCSV(t, in, cells)
			stdout, err := run(t, "predict", "--model", dir, "--in", in, "--out", out, "--workers", tt.workers, "--chunk-rows", tt.chunk, "--id-column", "row")
			if err != nil {
				t.Fatalf("predict: %v", err)
			}
			if w := fmt.Sprintf("wrote %d predictions", tt.rows); !strings.Contains(stdout, w) {
				t.Errorf("stdout = %q; want it to contain %q", stdout, w)
			}
			header, rows := readOutput(t, out)
			if got := strings.Join(header, ","); got != tt.wantHeader {
				t.Errorf("output header = %s; want %s", got, tt.wantHeader)
			}
			if len(rows) != len(want) {
				t.Fatalf("output has %d rows; want %d", len(rows), len(want))
			}
			for i, rec := range rows {
				if len(rec) != 1+len(want[i]) {
					t.Fatalf("output row %d = %q; want id and %d values", i, rec, len(want[i]))
				}
				if id := "r" + strconv.Itoa(i); rec[0] != id {
					t.Fatalf("output row %d has id %q; want %q (order lost)", i, rec[0], id)
				}
				for j, s := range rec[1:] {
					got, err := strconv.ParseFloat(s, 64)
					if err != nil || !(math.Abs(got-want[i][j]) <= 1e-6) {
						t.Fatalf("row %d output %d = %q; want %v", i, j, s, want[i][j])
					}
				}
			}
		})
	}
}

func TestPredictNoIDColumn(t *testing.T) {
	dir := gbmVersion(t, "binary")
	in := filepath.Join(t.TempDir(), "in.csv")
	out := filepath.Join(t.TempDir(), "out.csv")
	// Every feature missing but f3, and a row with every feature missing.
	body := "f0,f1,f2,f3,f4,f5,f6,f7,f8,f9\n,,,1,,,,,,\n,,,,,,,,,\n"
	if err := os.WriteFile(in, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "predict", "--model", dir, "--in", in, "--out", out); err != nil {
		t.Fatalf("predict: %v", err)
	}
	header, rows := readOutput(t, out)
	if got := strings.Join(header, ","); got != "prediction" {
		t.Errorf("output header = %s; want prediction", got)
	}
	m, err := predict.Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	for i, x := range [][]float64{
		{nan, nan, nan, 1, nan, nan, nan, nan, nan, nan},
		{nan, nan, nan, nan, nan, nan, nan, nan, nan, nan},
	} {
		var want [1]float64
		m.PredictRow(x, want[:])
		if i >= len(rows) || len(rows[i]) != 1 {
			t.Fatalf("output rows = %q; want 2 rows of 1 value", rows)
		}
		if got, _ := strconv.ParseFloat(rows[i][0], 64); got != want[0] {
			t.Errorf("row %d: prediction %s; want %v", i, rows[i][0], want[0])
		}
	}
}

func TestPredictErrors(t *testing.T) {
	const header = "id,f0,f1,f2,f3,f4,f5,f6,f7,f8,f9\n"
	const good = "a,1,2,3,4,5,6,7,8,9,10\n"
	tests := []struct {
		name  string
		input string
		args  []string
		want  string
	}{
		{"malformed number", header + good + good + "c,1,2,3,x1,5,6,7,8,9,10\n" + good,
			nil, "in.csv:4: column f3: bad value \"x1\""},
		{"malformed number in a later chunk", header + strings.Repeat(good, 20) + "c,1,2,3,4,5,6,7,8,9,1..0\n",
			nil, "in.csv:22: column f9: bad value \"1..0\""},
		{"missing feature column", "id,f0,f1,f2,f4,f5,f6,f7,f8,f9\n", nil, "in.csv:1: missing column f3"},
		{"missing id column", header + good, []string{"--id-column", "user"}, "missing column user (--id-column)"},
		{"duplicate feature column", "f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f3\n", nil, "in.csv:1: duplicate column f3"},
		{"too many fields", header + good + "a,1,2,3,4,5,6,7,8,9,10,11\n", nil, "in.csv:3: record has 12 fields, header has 11"},
		{"too few fields", header + "a,1,2\n", nil, "in.csv:2: record has 3 fields, header has 11"},
		{"bad quoting", header + good + "a,\"1,2,3,4,5,6,7,8,9,10\n", nil, "in.csv:3"},
		{"empty file", "", nil, "in.csv: empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := gbmVersion(t, "binary")
			tmp := t.TempDir()
			in := filepath.Join(tmp, "in.csv")
			out := filepath.Join(tmp, "out.csv")
			if err := os.WriteFile(in, []byte(tt.input), 0o644); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"predict", "--model", dir, "--in", in, "--out", out, "--workers", "3", "--chunk-rows", "3"}, tt.args...)
			_, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("predict = %v; want an error containing %q", err, tt.want)
			}
			var pe *dataset.ParseError
			if regexp.MustCompile(`in\.csv:\d`).MatchString(tt.want) && !errors.As(err, &pe) {
				t.Errorf("predict = %T; want a *dataset.ParseError", err)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 1 {
				t.Errorf("%s holds %d files after a failed run; want only the input", tmp, len(ents))
			}
		})
	}
}

func TestPredictModelErrors(t *testing.T) {
	// A model kind that does not score feature rows.
	pop := filepath.Join(t.TempDir(), "pop", "1")
	if err := os.MkdirAll(pop, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pop, "popularity.json"), []byte(`{"items":[{"id":"a","score":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := models.WriteSpec(pop, models.Spec{Kind: "popularity"}); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(in, []byte("f0\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.csv")
	_, err := run(t, "predict", "--model", pop, "--in", in, "--out", out)
	if !errors.Is(err, models.ErrUnsupported) || !strings.Contains(err.Error(), "does not score feature rows") {
		t.Errorf("predict with a popularity model = %v; want ErrUnsupported, does not score feature rows", err)
	}
	// No model.yaml.
	if _, err := run(t, "predict", "--model", t.TempDir(), "--in", in, "--out", out); err == nil {
		t.Errorf("predict without model.yaml = nil error; want one")
	}
	// Usage errors.
	for _, args := range [][]string{
		{"predict", "--in", in, "--out", out},
		{"predict", "--model", pop, "--in", in, "--out", out, "--workers", "0"},
	} {
		if _, err := run(t, args...); exitCode(err) != 2 {
			t.Errorf("recctl %s = %v; want a usage error", strings.Join(args, " "), err)
		}
	}
}

func TestPredictCanceled(t *testing.T) {
	dir := gbmVersion(t, "binary")
	cells, _ := fixtureRows(t, "binary", 200)
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in.csv")
	out := filepath.Join(tmp, "out.csv")
	writeMessyCSV(t, in, cells)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout, stderr bytes.Buffer
	err := runCommand(ctx, []string{"predict", "--model", dir, "--in", in, "--out", out, "--workers", "2", "--chunk-rows", "5"}, &stdout, &stderr)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("predict with a canceled context = %v; want context.Canceled", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a canceled predict left %s (stat: %v)", out, err)
	}
}
