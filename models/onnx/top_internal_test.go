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
