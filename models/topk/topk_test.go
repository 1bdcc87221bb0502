package topk

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/recserve/recserve/models"
)

func sc(id string, score float64) models.Scored { return models.Scored{ItemID: id, Score: score} }

func TestCollector(t *testing.T) {
	tests := []struct {
		name string
		k    int
		in   []models.Scored
		want []string
	}{
		{"empty", 3, nil, []string{}},
		{"k zero", 0, []models.Scored{sc("a", 1)}, []string{}},
		{"fewer than k", 3, []models.Scored{sc("a", 1), sc("b", 2)}, []string{"b", "a"}},
		{"keeps best", 2, []models.Scored{sc("a", 1), sc("b", 3), sc("c", 2), sc("d", 0)}, []string{"b", "c"}},
		{"ties by id", 2, []models.Scored{sc("c", 1), sc("a", 1), sc("b", 1)}, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.k)
			for _, s := range tt.in {
				c.Push(s.ItemID, s.Score)
			}
			got := []string{}
			for _, s := range c.Sorted() {
				got = append(got, s.ItemID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Sorted() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestCollectorAdmits(t *testing.T) {
	tests := []struct {
		name  string
		k     int
		held  []models.Scored
		id    string
		score float64
		want  bool
	}{
		{"k zero", 0, nil, "a", 1, false},
		{"not full", 2, []models.Scored{sc("a", 5)}, "b", 0, true},
		{"better than the worst", 2, []models.Scored{sc("a", 5), sc("b", 1)}, "c", 2, true},
		{"worse than the worst", 2, []models.Scored{sc("a", 5), sc("b", 1)}, "c", 0.5, false},
		{"tie, smaller id", 2, []models.Scored{sc("a", 5), sc("m", 1)}, "b", 1, true},
		{"tie, larger id", 2, []models.Scored{sc("a", 5), sc("m", 1)}, "z", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.k)
			for _, s := range tt.held {
				c.Push(s.ItemID, s.Score)
			}
			if got := c.Admits(tt.id, tt.score); got != tt.want {
				t.Errorf("Admits(%q, %v) = %v; want %v", tt.id, tt.score, got, tt.want)
			}
			before := c.Len()
			c.Push(tt.id, tt.score)
			if kept := c.Len() > before || slices.ContainsFunc(c.Sorted(), func(s models.Scored) bool { return s.ItemID == tt.id }); kept != tt.want {
				t.Errorf("Push(%q, %v) kept = %v; Admits said %v", tt.id, tt.score, kept, tt.want)
			}
		})
	}
}

func TestCollectorMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		n, k := r.IntN(500), r.IntN(40)
		all := make([]models.Scored, n)
		c := New(k)
		for i := range all {
			all[i] = models.Scored{ItemID: fmt.Sprintf("i%04d", i), Score: float64(r.IntN(20))}
			c.Push(all[i].ItemID, all[i].Score)
		}
		sort.Slice(all, func(i, j int) bool { return better(all[i], all[j]) })
		want := all[:min(k, n)]
		if got := c.Sorted(); !slices.Equal(got, want) {
			t.Fatalf("trial %d: Sorted() = %v; want %v", trial, got, want)
		}
	}
}

func BenchmarkCollector(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		ids := make([]string, n)
		scores := make([]float64, n)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range ids {
			ids[i] = fmt.Sprintf("i%06d", i)
			scores[i] = r.Float64()
		}
		b.Run(fmt.Sprintf("n=%d/k=10", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := New(10)
				for i, id := range ids {
					c.Push(id, scores[i])
				}
				_ = c.Sorted()
			}
		})
	}
}

// BenchmarkHeap measures the generic heap in the two ways models use it, by
// size: "bounded" keeps the best k of n float32 scores (onnx's candidate
// heap, the neighbour lists; most entries are turned down by one comparison
// with the top), "pop" builds a best-first heap over all n in O(n) and pops
// the best k (itemknn, userknn, onnx's fallback). Ties break by a shuffled
// rank, as the models' do. Neither allocates.
func BenchmarkHeap(b *testing.B) {
	type entry = Entry[float32, int32, int32]
	for _, n := range []int{1000, 100000} {
		r := rand.New(rand.NewPCG(1, 2))
		score := make([]float32, n)
		rank := make([]int32, n)
		for i := range score {
			score[i] = float32(r.IntN(n / 4)) // ties
			rank[i] = int32(i)
		}
		r.Shuffle(n, func(i, j int) { rank[i], rank[j] = rank[j], rank[i] })
		buf := make([]entry, 0, n)
		for _, k := range []int{10, 1000} {
			b.Run(fmt.Sprintf("bounded/n=%d/k=%d", n, k), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					h := Bounded(k, buf)
					for i := range int32(n) {
						if e := (entry{Score: score[i], Tie: rank[i], Value: i}); h.Admits(e) {
							h.Push(e)
						}
					}
				}
			})
			b.Run(fmt.Sprintf("pop/n=%d/k=%d", n, k), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					es := buf[:n]
					for i := range es {
						es[i] = entry{Score: score[i], Tie: rank[i], Value: int32(i)}
					}
					h := BestFirst(es)
					for range k {
						h.Pop()
					}
				}
			})
		}
	}
}
