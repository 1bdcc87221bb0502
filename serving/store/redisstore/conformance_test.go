package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recserve/recserve/internal/redistest"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/storetest"
)

// TestConformance runs the backend suite, each subtest on a fresh key
// prefix of one Redis.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Backend {
		return open(t, srv, Options{Prefix: fmt.Sprintf("conf%d:", n.Add(1))})
	})
}

// TestConformanceImpressions opens stores with short retentions, each on
// a fresh key prefix of one Redis.
func TestConformanceImpressions(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	storetest.RunImpressions(t, func(t *testing.T, retention time.Duration) storetest.ImpressionBackend {
		return open(t, srv, Options{Prefix: fmt.Sprintf("imp%d:", n.Add(1)), ImpressionRetention: retention})
	})
}

// TestConformanceDurable reopens the store on the same Redis and prefix.
func TestConformanceDurable(t *testing.T) {
	srv := redistest.Start(t)
	storetest.RunDurable(t, func(t *testing.T) func() (store.Backend, error) {
		return func() (store.Backend, error) {
			return Open(context.Background(), srv.URL(), Options{Prefix: "durable:"})
		}
	})
}

// TestConformanceFollower has two replicas share a Redis.
func TestConformanceFollower(t *testing.T) {
	srv := redistest.Start(t)
	storetest.RunFollower(t, func(t *testing.T) (store.Backend, store.Backend) {
		return open(t, srv, Options{}), open(t, srv, Options{})
	})
}
