package onnx

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"

	"github.com/recserve/recserve/models"
)

// BenchmarkSessionRun measures the raw inference path (one tensor of B rows,
// one Run, the output split) of the 10-item user_vector fixture by batch
// size, with a plain and a cancellable context (which adds onnxruntime run
// options with a terminate hook).
func BenchmarkSessionRun(b *testing.B) {
	benchRuntime(b)
	c, err := parseConfig(models.Spec{Signature: UserVector})
	if err != nil {
		b.Fatal(err)
	}
	t := tensors{input: "history", output: "scores", width: 10, outWidth: 10, outRank: 2}
	s, err := newSession[float32]("testdata/user_vector.onnx", t, c)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, ctx := range []struct {
		name string
		ctx  context.Context
	}{{"ctx=background", context.Background()}, {"ctx=cancellable", cancellable}} {
		for _, batch := range []int{1, 8, 64, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", ctx.name, batch), func(b *testing.B) {
				rows := make([][]float32, batch)
				for i := range rows {
					rows[i] = make([]float32, 10)
					rows[i][i%10] = 1
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.run(ctx.ctx, rows); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/row")
			})
		}
	}
}

// BenchmarkTrainedRun measures raw onnxruntime Run (one tensor, one Run, the
// output split; no input building, no gRPC) of a trained model version named
// by ONNX_BENCH_MODEL (e.g. var/demo/repo/rnn/1), on its own parity rows, at
// batch 1 and 32, and reports p50 per call: the baseline scripts/onnxbench.sh
// subtracts from the server's end-to-end latency.
//
//	ONNX_BENCH_MODEL=var/demo/repo/rnn/1 go test -run '^$' -bench TrainedRun ./models/onnx/
func BenchmarkTrainedRun(b *testing.B) {
	dir, m := benchTrained(b, nil)
	defer m.Close()
	raw, err := os.ReadFile(filepath.Join(dir, "parity.json"))
	if err != nil {
		b.Fatal(err)
	}
	var p struct{ Inputs [][]float64 }
	if err := json.Unmarshal(raw, &p); err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			rows := make([][]float64, batch)
			for i := range rows {
				rows[i] = p.Inputs[i%len(p.Inputs)]
			}
			lat := make([]time.Duration, 0, b.N)
			run := func() error { return nil }
			switch c := m.(*Ranker).core.(type) {
			case *rankCore[float32]:
				in := convert[float32](rows)
				run = func() error { _, err := c.s.run(context.Background(), in); return err }
			case *rankCore[int64]:
				in := convert[int64](rows)
				run = func() error { _, err := c.s.run(context.Background(), in); return err }
			}
			for b.Loop() {
				start := time.Now()
				if err := run(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch)/1000, "µs/row")
		})
	}
}

// BenchmarkTrainedConcurrent measures Recommend on a trained version
// (ONNX_BENCH_MODEL) in process, without gRPC, from 1, 8, 32 and 64
// goroutines, with dynamic batching off and on (max_batch_size 32, queue
// delay 2 ms, 1 runner), reporting requests/s and p99: the batcher's effect
// on the model path alone, which the end-to-end numbers of
// scripts/onnxbench.sh dilute with gRPC and client CPU on a 2-core machine.
//
//	ONNX_BENCH_MODEL=$PWD/var/demo/repo/cnn/1 go test -run '^$' -bench TrainedConcurrent -benchtime 3s ./models/onnx/
func BenchmarkTrainedConcurrent(b *testing.B) {
	dir := os.Getenv("ONNX_BENCH_MODEL")
	if dir == "" {
		b.Skip("set ONNX_BENCH_MODEL to a version directory")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "items.txt"))
	if err != nil {
		b.Fatal(err)
	}
	items := strings.Fields(string(raw))
	// Synthetic histories over the vocabulary: 20 events per user.
	queries := make([]models.Query, 256)
	for u := range queries {
		h := make([]dataset.Interaction, 20)
		for i := range h {
			h[i] = dataset.Interaction{ItemID: items[(u*31+i*7)%len(items)], Event: dataset.View, Value: 1, Timestamp: int64(i)}
		}
		queries[u] = models.Query{History: h, K: 10}
	}
	for _, batched := range []bool{false, true} {
		// Off explicitly: trained versions carry batching params (neural.py).
		batching := map[string]any{"max_batch_size": 0}
		if batched {
			batching = map[string]any{"max_batch_size": 32, "max_queue_delay_us": 2000, "runners": 1}
		}
		_, m := benchTrained(b, batching)
		for _, conc := range []int{1, 8, 32, 64} {
			b.Run(fmt.Sprintf("batching=%v/concurrency=%d", batched, conc), func(b *testing.B) {
				var next atomic.Int64
				lat := make([][]time.Duration, conc)
				var wg sync.WaitGroup
				start := time.Now()
				for g := range conc {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							t0 := time.Now()
							if _, err := m.(*Ranker).Recommend(context.Background(), queries[i%int64(len(queries))]); err != nil {
								b.Error(err)
								return
							}
							lat[g] = append(lat[g], time.Since(t0))
						}
					}()
				}
				wg.Wait()
				all := slices.Concat(lat...)
				slices.Sort(all)
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			})
		}
		m.Close()
	}
}

// benchRuntime loads onnxruntime for a benchmark, skipping it when the
// library is missing; the runtime is closed when the benchmark ends.
func benchRuntime(b *testing.B) *Runtime {
	b.Helper()
	path, err := FindLibrary()
	if err != nil {
		b.Skipf("onnxruntime library not found (run `make ort`): %v", err)
	}
	rt, err := NewRuntime(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	return rt
}

// benchTrained loads the version directory named by ONNX_BENCH_MODEL
// (skipping the benchmark when it is unset) with extra params merged into
// its model.yaml's, and returns the directory and the model.
func benchTrained(b *testing.B, params map[string]any) (string, models.Model) {
	b.Helper()
	dir := os.Getenv("ONNX_BENCH_MODEL")
	if dir == "" {
		b.Skip("set ONNX_BENCH_MODEL to a version directory")
	}
	rt := benchRuntime(b)
	spec, err := models.ReadSpec(dir)
	if err != nil {
		b.Fatal(err)
	}
	spec.Params = maps.Clone(spec.Params)
	if spec.Params == nil {
		spec.Params = map[string]any{}
	}
	maps.Copy(spec.Params, params)
	m, err := build(context.Background(), rt, models.Env{}, models.Version{Name: "bench", ID: "1", Dir: dir, Spec: spec})
	if err != nil {
		b.Fatal(err)
	}
	return dir, m
}
