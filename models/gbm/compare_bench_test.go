package gbm_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/recserve/recserve/models/gbm"
)

// The comparison with XGBoost's own predictor (scripts/gbmbench.sh) runs
// TestCompareXGBoostOutputs and BenchmarkCompareXGBoost on the files
// training/python/gbm_bench.py writes to $GBM_BENCH_DIR: model.json,
// rows.csv and xgb_pred.csv. Both skip when the variable is unset.

func compareDir(tb testing.TB) string {
	dir := os.Getenv("GBM_BENCH_DIR")
	if dir == "" {
		tb.Skip("GBM_BENCH_DIR not set; run scripts/gbmbench.sh")
	}
	return dir
}

func compareInputs(tb testing.TB, dir string) (*gbm.XGBoost, [][]float64, []float64) {
	m := load(tb, filepath.Join(dir, "model.json"))
	_, rows := readCSV(tb, filepath.Join(dir, "rows.csv"), true)
	if len(rows) == 0 {
		tb.Fatal("rows.csv has no rows")
	}
	for _, r := range rows {
		if len(r) != m.NumFeatures() {
			tb.Fatalf("rows.csv: row of %d values; model has %d features", len(r), m.NumFeatures())
		}
	}
	return m, rows, flatten(rows)
}

func flatten(rows [][]float64) []float64 {
	var xs []float64
	for _, r := range rows {
		xs = append(xs, r...)
	}
	return xs
}

// TestCompareXGBoostOutputs checks that Predict and PredictBatch reproduce
// XGBoost's inplace_predict on the benchmark rows.
func TestCompareXGBoostOutputs(t *testing.T) {
	dir := compareDir(t)
	m, rows, xs := compareInputs(t, dir)
	_, want := readCSV(t, filepath.Join(dir, "xgb_pred.csv"), false)
	if len(want) != len(rows) {
		t.Fatalf("%d XGBoost predictions for %d rows", len(want), len(rows))
	}
	batch := make([]float64, len(rows))
	if err := m.PredictBatch(xs, batch); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for r, x := range rows {
		p := m.Predict(x)
		if p != batch[r] {
			t.Fatalf("row %d: Predict = %v, PredictBatch = %v", r, p, batch[r])
		}
		d := math.Abs(p - want[r][0])
		if !(d <= parityTol) {
			t.Fatalf("row %d: prediction %v; xgboost %v (diff %g)", r, p, want[r][0], d)
		}
		worst = max(worst, d)
	}
	t.Logf("%d trees, %d rows: max abs diff from XGBoost %.3g", m.NumTrees(), len(rows), worst)
}

// BenchmarkCompareXGBoost times batch 1 (Predict on one row, cycling through
// the rows) and batch 1,000 (PredictBatch on all rows).
func BenchmarkCompareXGBoost(b *testing.B) {
	m, rows, xs := compareInputs(b, compareDir(b))
	b.Run("batch1", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU()
		i := 0
		for b.Loop() {
			m.Predict(rows[i%len(rows)])
			i++
		}
		cpu.report(b, 1)
	})
	b.Run("batch1000", func(b *testing.B) {
		if len(rows) < 1000 {
			b.Fatalf("%d rows; want 1000", len(rows))
		}
		xs := xs[:1000*m.NumFeatures()]
		out := make([]float64, 1000)
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			if err := m.PredictBatch(xs, out); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b, 1000)
	})
}

// cpuClock measures a benchmark loop's process CPU time next to the wall
// time testing reports: on a shared machine the wall time also counts time
// the benchmark was descheduled. gbm_bench.py measures XGBoost the same way.
type cpuClock struct{ start int64 }

func startCPU() cpuClock { return cpuClock{processCPU()} }

// report adds cpu-ns/op and, for batches, ns/row.
func (c cpuClock) report(b *testing.B, rows int) {
	end := processCPU()
	n := float64(b.N)
	if rows > 1 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n/float64(rows), "ns/row")
	}
	if c.start >= 0 && end >= 0 {
		b.ReportMetric(float64(end-c.start)/n, "cpu-ns/op")
	}
}
