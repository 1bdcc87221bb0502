package server

import (
	"fmt"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newRegistry returns the registry of one recserve process, holding the Go
// runtime's and the process's collectors (memory, goroutines, GC, CPU, open
// files). Run creates it and injects it into every layer that has metrics,
// rather than using the global default registry, so that two servers in one
// process (as tests start) keep their numbers apart.
func newRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register runtime metrics: %w", err)
		}
	}
	return reg, nil
}

// rpcBuckets are the upper bounds, in seconds, of grpc_server_handling_seconds:
// the router's latency buckets (a Recommend takes about a millisecond) and
// up to ten seconds for DeployModel uploads and long Score calls.
func rpcBuckets() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
}

// rpcMetrics creates the maintained go-grpc-middleware server metrics, with
// the handling-time histogram, and registers them on reg. Series appear as
// methods are first called (InitializeMetrics would add one per method and
// code up front: hundreds of zeros).
func rpcMetrics(reg prometheus.Registerer) (*grpcprom.ServerMetrics, error) {
	m := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(rpcBuckets())))
	if err := reg.Register(m); err != nil {
		return nil, fmt.Errorf("register RPC metrics: %w", err)
	}
	return m, nil
}

// eventMetrics count what EventService stored: per method (Track,
// TrackStream), the events acknowledged and, of those, the retries of
// events already stored. The RPC metrics count calls; these count events,
// which is what an ingest dashboard plots. A nil *eventMetrics records
// nothing.
type eventMetrics struct {
	accepted, duplicates *prometheus.CounterVec
}

func newEventMetrics(reg prometheus.Registerer) (*eventMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &eventMetrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recserve_events_accepted_total", Help: "Events acknowledged by EventService (retries included), by method.",
		}, []string{"method"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recserve_events_duplicates_total", Help: "Acknowledged events whose event_id was already stored (retries), by method.",
		}, []string{"method"}),
	}
	for _, c := range []prometheus.Collector{m.accepted, m.duplicates} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register event metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts one committed batch.
func (m *eventMetrics) observe(method string, accepted, duplicates int) {
	if m == nil {
		return
	}
	m.accepted.WithLabelValues(method).Add(float64(accepted))
	m.duplicates.WithLabelValues(method).Add(float64(duplicates))
}
