package models_test

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/recserve/recserve/models"
)

// TestBatchMetrics: observers of one version share its series, which are
// deleted with the last release (once, however often release is called);
// another version's series stay; a nil BatchMetrics observes nothing; and a
// registry can hold the histograms once.
func TestBatchMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	bm, err := models.NewBatchMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Three histograms per version with samples.
	count := func() int {
		t.Helper()
		n, err := testutil.GatherAndCount(reg)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a1, releaseA1 := bm.Observer("a", "1")
	a1again, releaseA1again := bm.Observer("a", "1") // reloaded before the old copy drained
	b2, releaseB2 := bm.Observer("b", "2")
	for _, o := range []interface {
		ObserveQueueWait(time.Duration)
		ObserveRun(int, time.Duration)
	}{a1, a1again, b2} {
		o.ObserveQueueWait(time.Millisecond)
		o.ObserveRun(4, time.Millisecond)
	}
	steps := []struct {
		name    string
		release func()
		want    int
	}{
		{"before any release", func() {}, 6},
		{"a/1's first copy released", releaseA1, 6},
		{"released again", releaseA1, 6},
		{"a/1's second copy released", releaseA1again, 3},
		{"b/2 released", releaseB2, 0},
	}
	for _, s := range steps {
		s.release()
		if got := count(); got != s.want {
			t.Errorf("%s: series = %d; want %d", s.name, got, s.want)
		}
	}

	var none *models.BatchMetrics
	if o, release := none.Observer("a", "1"); o != nil {
		t.Errorf("(*BatchMetrics)(nil).Observer = %v; want nil", o)
	} else {
		release()
	}

	var are prometheus.AlreadyRegisteredError
	if _, err := models.NewBatchMetrics(reg); !errors.As(err, &are) {
		t.Errorf("NewBatchMetrics(registry holding them) error = %v; want AlreadyRegisteredError", err)
	}
	if _, err := models.NewBatchMetrics(nil); err != nil {
		t.Errorf("NewBatchMetrics(nil) error = %v; want nil", err)
	}
}
