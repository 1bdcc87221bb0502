package onnx_test

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/onnx"
)

// TestBatchMetrics loads batched and unbatched versions with
// models.Env.Batches on a registry, sends concurrent requests, and checks
// that a batched version's histograms count every request's queue wait and
// every row of its Runs under its model and version, that an unbatched
// version has none, and that closing a version deletes its series.
func TestBatchMetrics(t *testing.T) {
	rt := newRuntime(t)
	tests := []struct {
		name    string
		params  map[string]any
		batched bool
	}{
		{"batched", map[string]any{"max_batch_size": 4, "max_queue_delay_us": 200, "runners": 2}, true},
		{"unbatched", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			bm, err := models.NewBatchMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			v := version(t, uvSpec(tt.params), "user_vector.onnx", "items.txt")
			v.Name, v.ID = "uv", "7"
			m, err := onnx.Builder(rt)(t.Context(), models.Env{Batches: bm}, v)
			if err != nil {
				t.Fatal(err)
			}
			const goroutines, each = 8, 10
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range each {
						q := models.Query{History: history("i01", dataset.View), K: 3}
						if _, err := m.(models.Recommender).Recommend(t.Context(), q); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()

			const requests = goroutines * each
			lbl := []string{"uv", "7"}
			var wantCount float64
			if tt.batched {
				wantCount = requests
			}
			// Each request is one row: the waits and the rows count requests.
			if got := histogramCount(t, reg, "recserve_batch_queue_wait_seconds", lbl); got != wantCount {
				t.Errorf("recserve_batch_queue_wait_seconds count = %v; want %v", got, wantCount)
			}
			if got := histogramSum(t, reg, "recserve_batch_rows", lbl); got != wantCount {
				t.Errorf("recserve_batch_rows sum = %v; want %v", got, wantCount)
			}
			runs := histogramCount(t, reg, "recserve_batch_run_seconds", lbl)
			if batches := histogramCount(t, reg, "recserve_batch_rows", lbl); runs != batches {
				t.Errorf("recserve_batch_run_seconds count = %v, recserve_batch_rows count = %v; want one of each per Run", runs, batches)
			}
			if tt.batched && (runs < requests/4 || runs > requests) {
				t.Errorf("Runs observed = %v; want between %d (full batches of 4) and %d", runs, requests/4, requests)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
				t.Errorf("series after Close = %d (%v); want 0", n, err)
			}
		})
	}
}

// histogramCount is the sample count of the histogram name{model,version} in
// reg, 0 when it has no such series.
func histogramCount(t *testing.T, reg prometheus.Gatherer, name string, modelVersion []string) float64 {
	t.Helper()
	return histogramValue(t, reg, name, modelVersion, false)
}

// histogramSum is the sample sum of the histogram name{model,version}.
func histogramSum(t *testing.T, reg prometheus.Gatherer, name string, modelVersion []string) float64 {
	t.Helper()
	return histogramValue(t, reg, name, modelVersion, true)
}

func histogramValue(t *testing.T, reg prometheus.Gatherer, name string, modelVersion []string, sum bool) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if got["model"] == modelVersion[0] && got["version"] == modelVersion[1] {
				if sum {
					return m.GetHistogram().GetSampleSum()
				}
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}
