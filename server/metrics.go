package server

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/recserve/recserve/serving/router"
)

// metricsSource is what /metrics reads; both return nil while the server is
// loading.
type metricsSource interface {
	routeMetrics() []router.RouteMetrics
	modelMetrics() []router.ModelMetrics
}

// metricsHandler serves the router's per-route, per-arm counters and its
// per-model-version call counters in the Prometheus text exposition format,
// so a stock Prometheus can scrape the debug address.
func metricsHandler(src metricsSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w, src.routeMetrics())
		writeModelMetrics(w, src.modelMetrics())
	})
}

// writeModelMetrics writes the calls per model version: the numbers that
// tell a canary from its stable version.
func writeModelMetrics(w io.Writer, ms []router.ModelMetrics) {
	series := []struct {
		name, help, typ string
		value           func(router.ModelMetrics) string
	}{
		{"recserve_model_calls_total", "Calls of a model version by the router (route sources, reranks, Score).", "counter",
			func(m router.ModelMetrics) string { return strconv.FormatUint(m.Calls, 10) }},
		{"recserve_model_errors_total", "Calls of a model version that returned an error.", "counter",
			func(m router.ModelMetrics) string { return strconv.FormatUint(m.Errors, 10) }},
		{"recserve_model_call_seconds_total", "Time spent in calls of a model version.", "counter",
			func(m router.ModelMetrics) string { return strconv.FormatFloat(m.Seconds, 'g', -1, 64) }},
	}
	for _, s := range series {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", s.name, s.help, s.name, s.typ)
		for _, m := range ms {
			fmt.Fprintf(w, "%s{model=%q,version=%q} %s\n", s.name, m.Model, m.Version, s.value(m))
		}
	}
}

func writeMetrics(w io.Writer, ms []router.RouteMetrics) {
	counters := []struct {
		name, help string
		get        func(router.RouteMetrics) uint64
	}{
		{"recserve_recommend_requests_total", "Recommend requests by route and experiment arm.", func(m router.RouteMetrics) uint64 { return m.Requests }},
		{"recserve_recommend_errors_total", "Recommend requests that failed.", func(m router.RouteMetrics) uint64 { return m.Errors }},
		{"recserve_recommend_cold_start_total", "Requests from users without history.", func(m router.RouteMetrics) uint64 { return m.ColdStart }},
		{"recserve_recommend_fallbacks_total", "Requests answered by the fallback chain alone.", func(m router.RouteMetrics) uint64 { return m.Fallbacks }},
		{"recserve_recommend_source_failures_total", "Sources dropped from a blend (error or timeout).", func(m router.RouteMetrics) uint64 { return m.SourceFailures }},
	}
	for _, c := range counters {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", c.name, c.help, c.name)
		for _, m := range ms {
			fmt.Fprintf(w, "%s{%s} %d\n", c.name, labels(m), c.get(m))
		}
	}
	const h = "recserve_recommend_latency_seconds"
	fmt.Fprintf(w, "# HELP %s Recommend latency by route and experiment arm.\n# TYPE %s histogram\n", h, h)
	bounds := router.BucketBounds()
	for _, m := range ms {
		for i, n := range m.Buckets {
			le := "+Inf"
			if i < len(bounds) {
				le = strconv.FormatFloat(bounds[i], 'g', -1, 64)
			}
			fmt.Fprintf(w, "%s_bucket{%s,le=%q} %d\n", h, labels(m), le, n)
		}
		fmt.Fprintf(w, "%s_sum{%s} %g\n%s_count{%s} %d\n", h, labels(m), m.LatencySeconds, h, labels(m), m.Requests)
	}
}

func labels(m router.RouteMetrics) string {
	return fmt.Sprintf("route=%q,arm=%q", m.Route, m.Arm)
}
