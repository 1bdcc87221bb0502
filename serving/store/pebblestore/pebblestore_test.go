package pebblestore_test

import (
	"testing"
	"time"

	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/pebblestore"
	"github.com/recserve/recserve/serving/store/storetest"
)

func open(t *testing.T, dir string) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatalf("Open(%q) error = %v; want nil", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return open(t, t.TempDir()) })
}

func TestConformanceImpressions(t *testing.T) {
	storetest.RunImpressions(t, func(t *testing.T, retention time.Duration) storetest.ImpressionBackend {
		s, err := pebblestore.Open(t.TempDir(), pebblestore.Options{ImpressionRetention: retention})
		if err != nil {
			t.Fatalf("Open() error = %v; want nil", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestDurable(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T) func() (store.Backend, error) {
		dir := t.TempDir()
		return func() (store.Backend, error) { return pebblestore.Open(dir, pebblestore.Options{}) }
	})
}
