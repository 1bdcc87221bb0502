package batcher_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recserve/recserve/models/batcher"
)

// rowsPerRequest is what one benchmark request scores: a few rows, as a
// gRPC request scoring a handful of candidates.
const rowsPerRequest = 4

// spin burns CPU for d, as a model does; sleeping would measure the timer.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// costRun is a fake model whose Run costs fixed + perRow per row, so larger
// batches amortize the fixed part as an onnxruntime session does.
func costRun(fixed, perRow time.Duration) batcher.Run[float32, float32] {
	return func(_ context.Context, rows []float32) ([]float32, error) {
		if fixed > 0 || perRow > 0 {
			spin(fixed + time.Duration(len(rows))*perRow)
		}
		out := make([]float32, len(rows))
		for i, x := range rows {
			out[i] = 2 * x
		}
		return out, nil
	}
}

// runConcurrent runs b.N calls of do from conc goroutines and reports rows/s.
func runConcurrent(b *testing.B, conc int, do func(ctx context.Context, rows []float32) ([]float32, error)) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range conc {
		wg.Go(func() {
			rows := make([]float32, rowsPerRequest)
			for next.Add(1) <= int64(b.N) {
				if _, err := do(context.Background(), rows); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*rowsPerRequest)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkDo compares MaxBatchSize 1 (one row per Run), 4 (= the request
// size: each request runs alone) and 32 on a model costing 50µs + 1µs per
// row, one runner, by callers in flight. "direct" calls Run once per request
// without the batcher, one call at a time, for reference.
func BenchmarkDo(b *testing.B) {
	run := costRun(50*time.Microsecond, time.Microsecond)
	for _, conc := range []int{1, 8, 32, 64} {
		b.Run(fmt.Sprintf("conc=%d/direct", conc), func(b *testing.B) {
			var mu sync.Mutex // one session, as Runners: 1
			runConcurrent(b, conc, func(ctx context.Context, rows []float32) ([]float32, error) {
				mu.Lock()
				defer mu.Unlock()
				return run(ctx, rows)
			})
		})
		for _, size := range []int{1, rowsPerRequest, 32} {
			b.Run(fmt.Sprintf("conc=%d/batch=%d", conc, size), func(b *testing.B) {
				bt, err := batcher.New(batcher.Options{MaxBatchSize: size}, run)
				if err != nil {
					b.Fatal(err)
				}
				defer bt.Close()
				runConcurrent(b, conc, bt.Do)
				b.ReportMetric(bt.Stats().MeanBatchSize, "rows/batch")
			})
		}
	}
}

// BenchmarkOverhead measures the batcher's own cost per request: Run does
// nothing, so ns/op is queueing, waking and routing (batch=4 is one Run per
// request, batch=1 four).
func BenchmarkOverhead(b *testing.B) {
	run := costRun(0, 0)
	for _, conc := range []int{1, 64} {
		b.Run(fmt.Sprintf("conc=%d/direct", conc), func(b *testing.B) {
			runConcurrent(b, conc, run)
		})
		for _, size := range []int{1, rowsPerRequest, 32} {
			b.Run(fmt.Sprintf("conc=%d/batch=%d", conc, size), func(b *testing.B) {
				bt, err := batcher.New(batcher.Options{MaxBatchSize: size}, run)
				if err != nil {
					b.Fatal(err)
				}
				defer bt.Close()
				runConcurrent(b, conc, bt.Do)
				b.ReportMetric(bt.Stats().MeanBatchSize, "rows/batch")
			})
		}
	}
}
