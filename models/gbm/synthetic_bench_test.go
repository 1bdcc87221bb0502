package gbm

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// BenchmarkPredictSynthetic tracks the speed of the shape
// scripts/gbmbench.sh compares with XGBoost (500 trees of depth 6, 30
// features, ~15% missing) without needing Python: a random model, batch 1
// (Predict, cycling through 1,000 rows) and batch 1,000 (PredictBatch).
// "general" forces the general node layout for comparison.
func BenchmarkPredictSynthetic(b *testing.B) {
	const nf, nTrees, depth, nRows = 30, 500, 6, 1000
	r := rand.New(rand.NewPCG(5, 6))
	rm := &randModel{ng: 1, nf: nf}
	thresholds := make([]float64, 64)
	for i := range thresholds {
		thresholds[i] = r.NormFloat64()
	}
	for range nTrees {
		var t randTree
		t.grow(r, 0, depth, nf, thresholds, 0.95)
		rm.trees = append(rm.trees, t)
		rm.groups = append(rm.groups, 0)
	}
	rows := randRows(r, nRows, nf)
	xs := make([]float64, 0, nRows*nf)
	for _, x := range rows {
		xs = append(xs, x...)
	}
	for _, layout := range []string{"perfect", "general"} {
		load := LoadXGBoostJSON
		if layout == "general" {
			load = loadGeneral
		}
		m, err := load(strings.NewReader(rm.json("binary:logistic")))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(layout+"/batch1", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Predict(rows[i%nRows])
				i++
			}
		})
		b.Run(layout+"/batch1000", func(b *testing.B) {
			out := make([]float64, nRows)
			b.ReportAllocs()
			for b.Loop() {
				if err := m.PredictBatch(xs, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nRows, "ns/row")
		})
	}
}
