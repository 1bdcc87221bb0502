package router

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// latencyBuckets are the upper bounds of the latency histogram of
// RouteMetrics, in seconds.
var latencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// runStats is what one request tells the metrics beyond its outcome.
type runStats struct {
	sourceFailures int
	fallback       bool // every source failed or returned nothing
}

// metrics counts requests per route and arm, and model calls per model
// version. It is safe for concurrent use; recording takes no lock once a key
// has been seen.
type metrics struct {
	m      sync.Map // routeArm → *counters
	models sync.Map // modelVersion → *modelCounters
}

type modelVersion struct{ model, version string }

type modelCounters struct {
	calls, errors atomic.Uint64
	nanos         atomic.Int64
}

// observeModel counts one call of a model version (a route's source, a
// rerank, a Score): comparing a canary with its stable version needs them
// apart.
func (m *metrics) observeModel(model, version string, d time.Duration, err error) {
	key := modelVersion{model, version}
	v, ok := m.models.Load(key)
	if !ok {
		v, _ = m.models.LoadOrStore(key, &modelCounters{})
	}
	c := v.(*modelCounters)
	c.calls.Add(1)
	if err != nil {
		c.errors.Add(1)
	}
	c.nanos.Add(int64(d))
}

// ModelMetrics are the calls the router made to one model version since it
// started.
type ModelMetrics struct {
	Model, Version string
	Calls, Errors  uint64
	// Seconds is the summed call time.
	Seconds float64
}

// ModelMetrics returns the per-version call counters, sorted.
func (r *Router) ModelMetrics() []ModelMetrics {
	var out []ModelMetrics
	r.metrics.models.Range(func(k, v any) bool {
		key, c := k.(modelVersion), v.(*modelCounters)
		out = append(out, ModelMetrics{Model: key.model, Version: key.version, Calls: c.calls.Load(),
			Errors: c.errors.Load(), Seconds: time.Duration(c.nanos.Load()).Seconds()})
		return true
	})
	slices.SortFunc(out, func(a, b ModelMetrics) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.Version, b.Version))
	})
	return out
}

type routeArm struct{ route, arm string }

type counters struct {
	requests, errors, coldStart, fallbacks, sourceFailures atomic.Uint64
	latencyNanos                                           atomic.Int64
	buckets                                                [len(latencyBuckets) + 1]atomic.Uint64
}

func (m *metrics) observe(route, arm string, d time.Duration, err error, cold bool, s runStats) {
	key := routeArm{route, arm}
	v, ok := m.m.Load(key)
	if !ok {
		v, _ = m.m.LoadOrStore(key, &counters{})
	}
	c := v.(*counters)
	c.requests.Add(1)
	if err != nil {
		c.errors.Add(1)
	}
	if cold {
		c.coldStart.Add(1)
	}
	if s.fallback {
		c.fallbacks.Add(1)
	}
	c.sourceFailures.Add(uint64(s.sourceFailures))
	c.latencyNanos.Add(int64(d))
	sec := d.Seconds()
	i, _ := slices.BinarySearch(latencyBuckets[:], sec)
	c.buckets[i].Add(1)
}

// RouteMetrics are the counters of one route and experiment arm since the
// router started.
type RouteMetrics struct {
	Route, Arm string
	Requests   uint64
	Errors     uint64
	ColdStart  uint64
	// Fallbacks counts requests answered by the fallback chain alone.
	Fallbacks uint64
	// SourceFailures counts sources dropped (error or timeout).
	SourceFailures uint64
	// LatencySeconds is the summed latency; Buckets[i] counts requests no
	// slower than BucketBounds[i] (cumulative, Prometheus style), the last
	// one every request.
	LatencySeconds float64
	Buckets        []uint64
}

// BucketBounds returns the latency bucket upper bounds of RouteMetrics, in
// seconds; the last bucket (+Inf) is implicit.
func BucketBounds() []float64 { return slices.Clone(latencyBuckets[:]) }

// Metrics returns a snapshot of the per-route, per-arm counters, sorted by
// route then arm.
func (r *Router) Metrics() []RouteMetrics {
	var out []RouteMetrics
	r.metrics.m.Range(func(k, v any) bool {
		key, c := k.(routeArm), v.(*counters)
		rm := RouteMetrics{
			Route: key.route, Arm: key.arm,
			Requests: c.requests.Load(), Errors: c.errors.Load(), ColdStart: c.coldStart.Load(),
			Fallbacks: c.fallbacks.Load(), SourceFailures: c.sourceFailures.Load(),
			LatencySeconds: time.Duration(c.latencyNanos.Load()).Seconds(),
			Buckets:        make([]uint64, len(c.buckets)),
		}
		var cum uint64
		for i := range c.buckets {
			cum += c.buckets[i].Load()
			rm.Buckets[i] = cum
		}
		out = append(out, rm)
		return true
	})
	slices.SortFunc(out, func(a, b RouteMetrics) int { return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Arm, b.Arm)) })
	return out
}
