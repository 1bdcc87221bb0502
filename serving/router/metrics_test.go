package router_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/recserve/recserve/serving/router"
)

// newRouterWithRegistry is newRouter with its metrics registered on a fresh
// registry, which it returns for the test to gather.
func newRouterWithRegistry(t *testing.T, ms router.Models, cfg router.Config) (*router.Router, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := router.New(router.Options{Models: ms, Store: testStore(), Config: cfg, Registerer: reg})
	if err != nil {
		t.Fatalf("router.New: %v", err)
	}
	return r, reg
}

// series returns the series of the metric name in reg whose labels are
// exactly labels (name, value pairs), or nil.
func series(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel())*2 != len(labels) {
				continue
			}
			for i, lp := range m.GetLabel() {
				if lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// sample is the value of a counter series, or the sample count of a
// histogram series; -1 when the series does not exist.
func sample(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	m := series(t, reg, name, labels...)
	switch {
	case m == nil:
		return -1
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetCounter().GetValue()
}

// TestMetrics sends requests that succeed, start cold, lose sources, fall
// back and fail, and checks every router metric counted them under its route
// and arm, or model and version.
func TestMetrics(t *testing.T) {
	tm := newTestModels()
	r, reg := newRouterWithRegistry(t, tm.all, baseConfig())
	reqs := []router.Request{
		{UserID: "u1", K: 3},                   // main: answered by main
		{UserID: "u1", K: 3},                   // main again
		{UserID: "nobody", K: 3},               // main: cold start, answered by the fallback
		{UserID: "u1", K: 3, Route: "flaky"},   // broken and missing dropped
		{UserID: "u1", K: 3, Route: "dead"},    // broken dropped; the fallback answers
		{UserID: "u1", K: 3, Model: "broken"},  // fails
		{UserID: "u1", K: 3, Model: "missing"}, // bad request: not counted
	}
	for _, req := range reqs {
		_, _ = r.Recommend(t.Context(), req)
	}
	tests := []struct {
		metric string
		labels []string
		want   float64
	}{
		{"recserve_recommend_requests_total", []string{"arm", "", "route", "main"}, 3},
		{"recserve_recommend_cold_start_total", []string{"arm", "", "route", "main"}, 1},
		{"recserve_recommend_fallbacks_total", []string{"arm", "", "route", "main"}, 1}, // the cold one
		{"recserve_recommend_errors_total", []string{"arm", "", "route", "main"}, 0},
		{"recserve_recommend_latency_seconds", []string{"arm", "", "route", "main"}, 3},
		{"recserve_recommend_source_failures_total", []string{"arm", "", "route", "flaky"}, 2},
		{"recserve_recommend_fallbacks_total", []string{"arm", "", "route", "flaky"}, 0},
		{"recserve_recommend_source_failures_total", []string{"arm", "", "route", "dead"}, 1},
		{"recserve_recommend_fallbacks_total", []string{"arm", "", "route", "dead"}, 1},
		{"recserve_recommend_requests_total", []string{"arm", "", "route", "model:broken"}, 1},
		{"recserve_recommend_errors_total", []string{"arm", "", "route", "model:broken"}, 1},
		{"recserve_recommend_requests_total", []string{"arm", "", "route", "model:missing"}, -1},
		// main: 2 warm requests and flaky's one; the cold one never calls it.
		{"recserve_model_calls_total", []string{"model", "main", "version", "v1"}, 3},
		{"recserve_model_call_duration_seconds", []string{"model", "main", "version", "v1"}, 3},
		{"recserve_model_errors_total", []string{"model", "main", "version", "v1"}, 0},
		// broken: flaky, dead and the direct call.
		{"recserve_model_calls_total", []string{"model", "broken", "version", "v1"}, 3},
		{"recserve_model_errors_total", []string{"model", "broken", "version", "v1"}, 3},
		{"recserve_model_call_duration_seconds", []string{"model", "broken", "version", "v1"}, 3},
	}
	for _, tt := range tests {
		if got := sample(t, reg, tt.metric, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v; want %v", tt.metric, tt.labels, got, tt.want)
		}
	}
	// The call-time counter and the histogram's sum add up the same calls.
	total := sample(t, reg, "recserve_model_call_seconds_total", "model", "main", "version", "v1")
	hist := series(t, reg, "recserve_model_call_duration_seconds", "model", "main", "version", "v1").GetHistogram().GetSampleSum()
	if total <= 0 || total != hist {
		t.Errorf("recserve_model_call_seconds_total = %v, histogram sum %v; want the same positive time", total, hist)
	}
}

// TestMetricsExposition pins what a scrape shows: metric names, help, types
// and labels of the counters, and the latency histograms' bucket bounds,
// which dashboards and alerts written against the earlier hand-written
// exposition rely on.
func TestMetricsExposition(t *testing.T) {
	tm := newTestModels()
	r, reg := newRouterWithRegistry(t, tm.all, baseConfig())
	if _, err := r.Recommend(t.Context(), router.Request{UserID: "u1", K: 3, Route: "dead"}); err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP recserve_model_calls_total Calls of a model version by the router (route sources, reranks, Score).
# TYPE recserve_model_calls_total counter
recserve_model_calls_total{model="broken",version="v1"} 1
recserve_model_calls_total{model="pop",version="v1"} 1
# HELP recserve_model_errors_total Calls of a model version that returned an error.
# TYPE recserve_model_errors_total counter
recserve_model_errors_total{model="broken",version="v1"} 1
recserve_model_errors_total{model="pop",version="v1"} 0
# HELP recserve_recommend_cold_start_total Requests from users without history.
# TYPE recserve_recommend_cold_start_total counter
recserve_recommend_cold_start_total{arm="",route="dead"} 0
# HELP recserve_recommend_errors_total Recommend requests that failed.
# TYPE recserve_recommend_errors_total counter
recserve_recommend_errors_total{arm="",route="dead"} 0
# HELP recserve_recommend_fallbacks_total Requests answered by the fallback chain alone.
# TYPE recserve_recommend_fallbacks_total counter
recserve_recommend_fallbacks_total{arm="",route="dead"} 1
# HELP recserve_recommend_requests_total Recommend requests by route and experiment arm.
# TYPE recserve_recommend_requests_total counter
recserve_recommend_requests_total{arm="",route="dead"} 1
# HELP recserve_recommend_source_failures_total Sources dropped from a blend (error or timeout).
# TYPE recserve_recommend_source_failures_total counter
recserve_recommend_source_failures_total{arm="",route="dead"} 1
`
	names := []string{"recserve_model_calls_total", "recserve_model_errors_total", "recserve_recommend_cold_start_total",
		"recserve_recommend_errors_total", "recserve_recommend_fallbacks_total", "recserve_recommend_requests_total",
		"recserve_recommend_source_failures_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	bounds := []string{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1"}
	for _, h := range []struct {
		name   string
		labels []string
	}{
		{"recserve_recommend_latency_seconds", []string{"arm", "", "route", "dead"}},
		{"recserve_model_call_duration_seconds", []string{"model", "broken", "version", "v1"}},
	} {
		m := series(t, reg, h.name, h.labels...)
		if m == nil {
			t.Errorf("%s%v is missing", h.name, h.labels)
			continue
		}
		var got []string
		for _, b := range m.GetHistogram().GetBucket() {
			got = append(got, strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))
		}
		if !slices.Equal(got, bounds) {
			t.Errorf("%s buckets = %v; want %v", h.name, got, bounds)
		}
	}
}

// TestMetricsRegistry: a router without a Registerer works; a router whose
// metric names are taken on its registry is refused and takes none of the
// names it registered before the clash back out with it.
func TestMetricsRegistry(t *testing.T) {
	tm := newTestModels()
	r := newRouter(t, tm.all, baseConfig())
	if _, err := r.Recommend(t.Context(), router.Request{UserID: "u1", K: 3}); err != nil {
		t.Fatalf("Recommend without a Registerer: %v", err)
	}
	reg := prometheus.NewRegistry()
	// The last metric the router registers, taken beforehand.
	taken := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "recserve_model_call_duration_seconds",
		Help: "Duration of calls of a model version by the router (route sources, reranks, Score), to compare a canary's latency with its stable version's.",
	}, []string{"model", "version"})
	reg.MustRegister(taken)
	_, err := router.New(router.Options{Models: tm.all, Store: testStore(), Config: baseConfig(), Registerer: reg})
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Errorf("router.New(registry in use) error = %v; want one wrapping AlreadyRegisteredError", err)
	}
	// Every other name is free again: a second router registers them.
	if !reg.Unregister(taken) {
		t.Fatal("Unregister(taken) = false")
	}
	if _, err := router.New(router.Options{Models: tm.all, Store: testStore(), Config: baseConfig(), Registerer: reg}); err != nil {
		t.Errorf("router.New after a refused one: %v; want nil", err)
	}
}
