package batcher_test

import (
	"context"
	"fmt"
	"time"

	"github.com/recserve/recserve/models/batcher"
)

func ExampleBatcher() {
	// score stands for a model run: it scores every row of a batch at once.
	score := func(_ context.Context, rows []float32) ([]float32, error) {
		out := make([]float32, len(rows))
		for i, x := range rows {
			out[i] = x / 2
		}
		return out, nil
	}
	b, err := batcher.New(batcher.Options{
		MaxBatchSize:  64,
		MaxQueueDelay: 2 * time.Millisecond,
		Runners:       2,
	}, score)
	if err != nil {
		panic(err)
	}
	defer b.Close()

	// Each gRPC handler calls Do with its own rows and ctx; concurrent calls
	// share Run calls.
	out, err := b.Do(context.Background(), []float32{1, 2, 3})
	fmt.Println(out, err)
	// Output: [0.5 1 1.5] <nil>
}
