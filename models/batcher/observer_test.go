package batcher_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/models/batcher"
)

// recorder is a batcher.Observer that keeps what it is told.
type recorder struct {
	mu    sync.Mutex
	waits []time.Duration
	rows  []int
	runs  []time.Duration
}

func (r *recorder) ObserveQueueWait(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
}

func (r *recorder) ObserveRun(rows int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, rows)
	r.runs = append(r.runs, d)
}

// TestObserver checks that the Observer gets one queue wait per request that
// ran and one Run per batch with its rows, failed Runs included, and that a
// Run is observed as taking at least as long as it did.
func TestObserver(t *testing.T) {
	tests := []struct {
		name     string
		requests [][]int
		delay    time.Duration
		fail     bool
		rows     []int // per Run, in order
	}{
		{name: "4 requests of 1 row", requests: [][]int{{1}, {2}, {3}, {4}}, delay: time.Hour, rows: []int{4}},
		{name: "1 request of 8 rows, 2 batches", requests: [][]int{seq(1, 8)}, delay: time.Hour, rows: []int{4, 4}},
		{name: "requests of 3 and 5 rows", requests: [][]int{{1, 2, 3}, {4, 5, 6, 7, 8}}, delay: time.Hour, rows: []int{4, 4}},
		{name: "failed run", requests: [][]int{{1}, {2}, {3}, {4}}, delay: time.Hour, fail: true, rows: []int{4}},
		{name: "lone request waits for the delay", requests: [][]int{{1}}, delay: 5 * time.Millisecond, rows: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var took []time.Duration // as the Run itself measured it
			run := func(_ context.Context, rows []int) ([]int, error) {
				start := time.Now()
				defer func() {
					mu.Lock()
					took = append(took, time.Since(start))
					mu.Unlock()
				}()
				if tt.fail {
					return nil, errors.New("boom")
				}
				return fs(rows), nil
			}
			obs := &recorder{}
			b := newBatcher(t, batcher.Options{MaxBatchSize: 4, MaxQueueDelay: tt.delay, Observer: obs}, run)
			var res []<-chan result
			for _, rows := range tt.requests {
				res = append(res, goDo(context.Background(), b, rows))
			}
			for _, ch := range res {
				<-ch
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.waits) != len(tt.requests) {
				t.Errorf("queue waits observed = %d; want one per request, %d", len(obs.waits), len(tt.requests))
			}
			if !reflect.DeepEqual(obs.rows, tt.rows) {
				t.Errorf("rows per Run observed = %v; want %v", obs.rows, tt.rows)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(obs.runs) != len(took) {
				t.Fatalf("Runs observed = %d; want %d", len(obs.runs), len(took))
			}
			if slices.Max(obs.runs) < slices.Max(took) {
				t.Errorf("longest Run observed = %v; want ≥ %v, its own measure", slices.Max(obs.runs), slices.Max(took))
			}
			if tt.delay < time.Hour && slices.Min(obs.waits) < tt.delay {
				t.Errorf("shortest queue wait = %v; want ≥ MaxQueueDelay %v", slices.Min(obs.waits), tt.delay)
			}
		})
	}
}
