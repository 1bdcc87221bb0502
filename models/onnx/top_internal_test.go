package onnx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/vocab"
)

// TestTopMatchesFullHeap checks the bounded-candidate top K against the
// max-heap over every item, with ties, NaN scores and filters that reject
// few, many or nearly all items (forcing the fallback).
func TestTopMatchesFullHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 1 + rng.IntN(400)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("i%04d", rng.IntN(100000)*n+i) // unique, random order
		}
		items, err := vocab.New(ids)
		if err != nil {
			t.Fatal(err)
		}
		m := newRanker(config{}, items, nil)
		scores := make([]float32, n)
		for i := range scores {
			scores[i] = float32(rng.IntN(20)) // many ties
			if rng.IntN(50) == 0 {
				scores[i] = float32(math.NaN())
			}
		}
		reject := []float64{0, 0.5, 0.97}[trial%3]
		allowed := map[string]bool{}
		for _, id := range ids {
			allowed[id] = rng.Float64() >= reject
		}
		q := &models.Query{K: 1 + rng.IntN(30), Allow: func(id string) bool { return allowed[id] }}
		got, want := m.top(scores, q), m.topAll(scores, q)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (n %d, K %d, reject %v): top = %v; topAll = %v", trial, n, q.K, reject, got, want)
		}
	}
}

// BenchmarkTop measures the top-K selection of Recommend over a model's
// output (K=20, the router's 2×10) by vocabulary size, without onnxruntime:
// "bounded" filters out a 50-item history (the usual case: the bounded
// candidate heap answers), "fallback" rejects 97% of the items, so the
// candidates run out and the max-heap over every item answers.
func BenchmarkTop(b *testing.B) {
	for _, n := range []int{2000, 20000} {
		rng := rand.New(rand.NewPCG(1, 2))
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("i%06d", rng.IntN(1000)*n+i) // unique, random order
		}
		items, err := vocab.New(ids)
		if err != nil {
			b.Fatal(err)
		}
		m := newRanker(config{}, items, nil)
		scores := make([][]float32, 16)
		for k := range scores {
			scores[k] = make([]float32, n)
			for i := range scores[k] {
				scores[k][i] = float32(rng.NormFloat64())
			}
		}
		seen := map[string]bool{}
		for range 50 {
			seen[ids[rng.IntN(n)]] = true
		}
		for _, c := range []struct {
			name  string
			allow func(string) bool
		}{
			{"bounded", func(id string) bool { return !seen[id] }},
			{"fallback", func(id string) bool { return id[len(id)-2:] < "03" }},
		} {
			b.Run(fmt.Sprintf("%s/n=%d", c.name, n), func(b *testing.B) {
				q := &models.Query{K: 20, Allow: c.allow}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if out := m.top(scores[i%len(scores)], q); len(out) != q.K {
						b.Fatalf("top = %d items; want %d", len(out), q.K)
					}
					i++
				}
			})
		}
	}
}
