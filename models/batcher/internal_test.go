package batcher

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

// These tests reach the checks Do's own cancellation path usually beats:
// a request whose ctx ends while it sits in the queue, or after it was taken
// into a batch but before Run.

type recorder struct {
	mu      sync.Mutex
	batches [][]int
}

func (r *recorder) run(_ context.Context, rows []int) ([]int, error) {
	r.mu.Lock()
	r.batches = append(r.batches, append([]int(nil), rows...))
	r.mu.Unlock()
	out := make([]int, len(rows))
	for i, x := range rows {
		out[i] = -x
	}
	return out, nil
}

// TestTakeSkipsExpired enqueues requests without a waiting Do, ends one's
// ctx, and lets Close flush the queue: the expired one is finished with its
// ctx error and never run.
func TestTakeSkipsExpired(t *testing.T) {
	rec := &recorder{}
	b, err := New(Options{MaxBatchSize: 8, MaxQueueDelay: time.Hour}, rec.run)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dead, err := b.enqueue(ctx, []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	alive, err := b.enqueue(context.Background(), []int{3})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	b.Close()
	<-dead.done
	<-alive.done
	if !errors.Is(dead.err, context.Canceled) || !dead.expired {
		t.Errorf("expired request: err %v, expired %v; want context.Canceled, true", dead.err, dead.expired)
	}
	if alive.err != nil || !reflect.DeepEqual(alive.out, []int{-3}) {
		t.Errorf("live request = %v, %v; want [-3]", alive.out, alive.err)
	}
	if want := [][]int{{3}}; !reflect.DeepEqual(rec.batches, want) {
		t.Errorf("batches = %v; want %v", rec.batches, want)
	}
}

// TestRunBatchSkipsGone checks the check right before Run: parts whose
// request has ended are left out, and a batch with none left is not run.
func TestRunBatchSkipsGone(t *testing.T) {
	newReq := func(ctx context.Context, rows ...int) *request[int, int] {
		return &request[int, int]{ctx: ctx, rows: rows, done: make(chan struct{}), out: make([]int, len(rows)), left: len(rows)}
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		reqs []*request[int, int]
		want [][]int
	}{
		{"all gone", []*request[int, int]{newReq(canceled, 1), newReq(canceled, 2)}, nil},
		{"one gone", []*request[int, int]{newReq(canceled, 1), newReq(context.Background(), 2, 3)}, [][]int{{2, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			b, err := New(Options{MaxBatchSize: 8}, rec.run)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var parts []part[int, int]
			for _, r := range tt.reqs {
				parts = append(parts, part[int, int]{req: r, lo: 0, hi: len(r.rows)})
			}
			b.runBatch(parts)
			if !reflect.DeepEqual(rec.batches, tt.want) {
				t.Errorf("batches = %v; want %v", rec.batches, tt.want)
			}
			for _, r := range tt.reqs {
				<-r.done
				if r.ctx.Err() != nil && !errors.Is(r.err, context.Canceled) {
					t.Errorf("canceled request err = %v; want context.Canceled", r.err)
				}
			}
			if s := b.Stats(); s.Batches != int64(len(tt.want)) {
				t.Errorf("Stats().Batches = %d; want %d", s.Batches, len(tt.want))
			}
		})
	}
}
