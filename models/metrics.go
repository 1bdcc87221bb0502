package models

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recserve/recserve/models/batcher"
)

// BatchMetrics exports what the dynamic batchers of model versions
// (models/batcher, used by the onnx kind) observe, as Prometheus histograms
// labelled by model and version: how long requests wait for a batch
// (recserve_batch_queue_wait_seconds), how long a Run takes
// (recserve_batch_run_seconds) and how many rows it gets
// (recserve_batch_rows). These tell whether a model's max_queue_delay_us and
// max_batch_size suit its load, and a canary's from its stable version's.
//
// One BatchMetrics serves a whole process: its histograms are registered
// once, and versions come and go as label values. A nil *BatchMetrics is
// valid and observes nothing (offline tools pass none). It is safe for
// concurrent use.
type BatchMetrics struct {
	queueWait, run, rows *prometheus.HistogramVec

	mu   sync.Mutex
	refs map[[2]string]int // model, version → observers not yet released
}

// NewBatchMetrics creates the batch histograms and registers them on reg (a
// nil reg leaves them unregistered). It fails when reg already has them.
func NewBatchMetrics(reg prometheus.Registerer) (*BatchMetrics, error) {
	labels := []string{"model", "version"}
	// From a tenth of a millisecond (an in-process Run of a few rows; a
	// queue delay set in model.yaml is usually below a millisecond) to a
	// second.
	seconds := []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
	m := &BatchMetrics{
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recserve_batch_queue_wait_seconds",
			Help:    "Time a request to a batched model version waited from its arrival to the start of the Run that took its first rows.",
			Buckets: seconds,
		}, labels),
		run: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recserve_batch_run_seconds",
			Help:    "Duration of one Run (one batch) of a batched model version.",
			Buckets: seconds,
		}, labels),
		rows: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recserve_batch_rows",
			Help:    "Rows per Run (batch size) of a batched model version.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 .. 1024
		}, labels),
		refs: map[[2]string]int{},
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.queueWait, m.run, m.rows}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("register batch metrics: %w", err)
		}
	}
	return m, nil
}

// Observer returns the batcher.Observer of one model version and the
// function to call once its batcher is closed. When every observer of a
// version has been released its series are deleted, so versions that were
// rolled back or replaced do not linger in every scrape; a version loaded
// twice (reloaded before the old copy drained) keeps its series until both
// are released. A nil m returns a nil Observer and a no-op release. Calling
// release more than once has no further effect.
func (m *BatchMetrics) Observer(model, version string) (batcher.Observer, func()) {
	if m == nil {
		return nil, func() {}
	}
	key := [2]string{model, version}
	m.mu.Lock()
	m.refs[key]++
	o := batchObserver{
		queueWait: m.queueWait.WithLabelValues(model, version),
		run:       m.run.WithLabelValues(model, version),
		rows:      m.rows.WithLabelValues(model, version),
	}
	m.mu.Unlock()
	var once sync.Once
	return o, func() { once.Do(func() { m.release(key) }) }
}

// release drops one reference to key's series, deleting them with the last.
func (m *BatchMetrics) release(key [2]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refs[key]--; m.refs[key] > 0 {
		return
	}
	delete(m.refs, key)
	for _, v := range []*prometheus.HistogramVec{m.queueWait, m.run, m.rows} {
		v.DeleteLabelValues(key[0], key[1])
	}
}

// batchObserver is one version's batcher.Observer over its resolved series.
type batchObserver struct {
	queueWait, run, rows prometheus.Observer
}

func (o batchObserver) ObserveQueueWait(d time.Duration) { o.queueWait.Observe(d.Seconds()) }

func (o batchObserver) ObserveRun(rows int, d time.Duration) {
	o.run.Observe(d.Seconds())
	o.rows.Observe(float64(rows))
}
