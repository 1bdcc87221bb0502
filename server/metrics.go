package server

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/recserve/recserve/server/router"
)

// metricsHandler serves the router's per-route, per-arm counters in the
// Prometheus text exposition format, so a stock Prometheus can scrape the
// debug address. snapshot returns nil while the server is loading.
func metricsHandler(snapshot func() []router.RouteMetrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w, snapshot())
	})
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
