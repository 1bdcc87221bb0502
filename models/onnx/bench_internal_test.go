package onnx

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/recserve/recserve/models"
)

// BenchmarkSessionRun measures the raw inference path (one tensor of B rows,
// one Run, the output split) of the 10-item user_vector fixture by batch
// size, with a plain and a cancellable context (which adds onnxruntime run
// options with a terminate hook).
func BenchmarkSessionRun(b *testing.B) {
	path, err := FindLibrary()
	if err == nil {
		_, err = os.Stat(path)
	}
	if err != nil {
		b.Skipf("onnxruntime library not found (run `make ort`): %v", err)
	}
	rt, err := NewRuntime(path)
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
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
