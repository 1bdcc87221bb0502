package router

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkObserve measures what metrics cost one Recommend once its series
// exist: the route's observe and two sources' observeModel, serially and
// from every core at once (the counters are shared).
func BenchmarkObserve(b *testing.B) {
	var m metrics
	if err := m.register(prometheus.NewRegistry()); err != nil {
		b.Fatal(err)
	}
	errBoom := errors.New("boom")
	request := func() {
		m.observeModel("popularity", "1", 300*time.Microsecond, nil)
		m.observeModel("itemknn", "2", 700*time.Microsecond, errBoom)
		m.observe("main", "exp/a", time.Millisecond, nil, false, runStats{sourceFailures: 1})
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			request()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				request()
			}
		})
	})
}
