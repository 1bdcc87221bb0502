package router

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets returns the upper bounds, in seconds, of the router's
// latency histograms (recserve_recommend_latency_seconds and
// recserve_model_call_duration_seconds): sub-millisecond for in-memory
// models up to a second for a slow network. A function, not a variable, so
// no histogram can change another's bounds.
func latencyBuckets() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
}

// runStats is what one request tells the metrics beyond its outcome.
type runStats struct {
	sourceFailures int
	fallback       bool // every source failed or returned nothing
}

// metrics counts requests per route and arm, and model calls per model
// version, in Prometheus collectors registered on Options.Registerer. It is
// safe for concurrent use. Recording looks up the series of a key in a
// sync.Map once it has been seen, so the hot path takes no lock and does not
// hash label values into the collectors' maps on every request.
type metrics struct {
	requests, errors, coldStart, fallbacks, sourceFailures *prometheus.CounterVec
	latency                                                *prometheus.HistogramVec

	modelCalls, modelErrors, modelSeconds *prometheus.CounterVec
	modelLatency                          *prometheus.HistogramVec

	impressions, modelImpressions *prometheus.CounterVec

	routes sync.Map // routeArm → *routeSeries
	models sync.Map // modelVersion → *modelSeries
	// shown holds the impression counters of a route and arm, and of a
	// model version (impressionKey → prometheus.Counter).
	shown sync.Map
}

// impressionKey names an impression counter: a route and arm, or a model
// version (model set).
type impressionKey struct{ route, arm, model, version string }

type routeArm struct{ route, arm string }

// routeSeries are the collectors of one route and arm, resolved once.
type routeSeries struct {
	requests, errors, coldStart, fallbacks, sourceFailures prometheus.Counter
	latency                                                prometheus.Observer
}

type modelVersion struct{ model, version string }

// modelSeries are the collectors of one model version, resolved once.
type modelSeries struct {
	calls, errors, seconds prometheus.Counter
	latency                prometheus.Observer
}

// register creates the collectors and registers them on reg; a nil reg
// leaves them unregistered (still counting, never exposed), for routers that
// no scrape reads such as offline evaluation's. Registering the same names
// twice on one registry (two routers) fails, and the collectors registered
// so far are unregistered again.
func (m *metrics) register(reg prometheus.Registerer) error {
	routeLabels := []string{"route", "arm"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m.requests = counter("recserve_recommend_requests_total", "Recommend requests by route and experiment arm.", routeLabels)
	m.errors = counter("recserve_recommend_errors_total", "Recommend requests that failed.", routeLabels)
	m.coldStart = counter("recserve_recommend_cold_start_total", "Requests from users without history.", routeLabels)
	m.fallbacks = counter("recserve_recommend_fallbacks_total", "Requests answered by the fallback chain alone.", routeLabels)
	m.sourceFailures = counter("recserve_recommend_source_failures_total", "Sources dropped from a blend (error or timeout).", routeLabels)
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "recserve_recommend_latency_seconds", Help: "Recommend latency by route and experiment arm.", Buckets: latencyBuckets(),
	}, routeLabels)

	modelLabels := []string{"model", "version"}
	m.modelCalls = counter("recserve_model_calls_total", "Calls of a model version by the router (route sources, reranks, Score).", modelLabels)
	m.modelErrors = counter("recserve_model_errors_total", "Calls of a model version that returned an error.", modelLabels)
	m.modelSeconds = counter("recserve_model_call_seconds_total", "Time spent in calls of a model version.", modelLabels)
	m.modelLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "recserve_model_call_duration_seconds",
		Help:    "Duration of calls of a model version by the router (route sources, reranks, Score), to compare a canary's latency with its stable version's.",
		Buckets: latencyBuckets(),
	}, modelLabels)
	m.impressions = counter("recserve_impressions_total",
		"Answers shown (Recommend by route and arm; SimilarItems as route similar), each an impression with a recommendation_id.", routeLabels)
	m.modelImpressions = counter("recserve_model_impressions_total",
		"Impressions a model version contributed to: a canary's against its stable version's.", modelLabels)
	if reg == nil {
		return nil
	}
	cs := []prometheus.Collector{m.requests, m.errors, m.coldStart, m.fallbacks, m.sourceFailures, m.latency,
		m.modelCalls, m.modelErrors, m.modelSeconds, m.modelLatency, m.impressions, m.modelImpressions}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("router: register metrics: %w", err)
		}
	}
	return nil
}

// observeModel counts one call of a model version (a route's source, a
// rerank, a Score): comparing a canary with its stable version needs them
// apart.
func (m *metrics) observeModel(model, version string, d time.Duration, err error) {
	key := modelVersion{model, version}
	v, ok := m.models.Load(key)
	if !ok {
		v, _ = m.models.LoadOrStore(key, &modelSeries{
			calls:   m.modelCalls.WithLabelValues(model, version),
			errors:  m.modelErrors.WithLabelValues(model, version),
			seconds: m.modelSeconds.WithLabelValues(model, version),
			latency: m.modelLatency.WithLabelValues(model, version),
		})
	}
	s := v.(*modelSeries)
	s.calls.Inc()
	if err != nil {
		s.errors.Inc()
	}
	sec := d.Seconds()
	s.seconds.Add(sec)
	s.latency.Observe(sec)
}

// observe counts one Recommend request of a route and arm.
func (m *metrics) observe(route, arm string, d time.Duration, err error, cold bool, st runStats) {
	key := routeArm{route, arm}
	v, ok := m.routes.Load(key)
	if !ok {
		v, _ = m.routes.LoadOrStore(key, &routeSeries{
			requests:       m.requests.WithLabelValues(route, arm),
			errors:         m.errors.WithLabelValues(route, arm),
			coldStart:      m.coldStart.WithLabelValues(route, arm),
			fallbacks:      m.fallbacks.WithLabelValues(route, arm),
			sourceFailures: m.sourceFailures.WithLabelValues(route, arm),
			latency:        m.latency.WithLabelValues(route, arm),
		})
	}
	s := v.(*routeSeries)
	s.requests.Inc()
	if err != nil {
		s.errors.Inc()
	}
	if cold {
		s.coldStart.Inc()
	}
	if st.fallback {
		s.fallbacks.Inc()
	}
	if st.sourceFailures > 0 {
		s.sourceFailures.Add(float64(st.sourceFailures))
	}
	s.latency.Observe(d.Seconds())
}

// observeImpression counts one impression for its route and arm and for
// each model version that answered.
func (m *metrics) observeImpression(route, arm string, mvs []ModelVersion) {
	m.shownCounter(impressionKey{route: route, arm: arm}).Inc()
	for _, mv := range mvs {
		m.shownCounter(impressionKey{model: mv.Name, version: mv.Version}).Inc()
	}
}

func (m *metrics) shownCounter(k impressionKey) prometheus.Counter {
	if v, ok := m.shown.Load(k); ok {
		return v.(prometheus.Counter)
	}
	var c prometheus.Counter
	if k.model != "" {
		c = m.modelImpressions.WithLabelValues(k.model, k.version)
	} else {
		c = m.impressions.WithLabelValues(k.route, k.arm)
	}
	v, _ := m.shown.LoadOrStore(k, c)
	return v.(prometheus.Counter)
}
