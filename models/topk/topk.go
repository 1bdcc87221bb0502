// Package topk selects the K best scored items in O(n log K) with a bounded
// min-heap. Every model uses it, so ties break the same way everywhere: a higher
// score first, then the lexicographically smaller item id, which makes answers
// deterministic. Collector does this for item ids; Heap is the generic heap
// underneath, which models that rank item or user indices use directly.
package topk

import (
	"slices"

	"github.com/recserve/recserve/models"
)

// Collector keeps the K best items pushed so far. The zero value is not usable;
// call New. A Collector is not safe for concurrent use.
type Collector struct {
	h Heap[float64, string, struct{}]
}

// New returns a Collector for the best k items; k <= 0 collects nothing.
func New(k int) *Collector {
	k = max(k, 0)
	return &Collector{h: Bounded(k, make([]Entry[float64, string, struct{}], 0, min(k, 1024)))}
}

// better reports whether a ranks before b.
func better(a, b models.Scored) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.ItemID < b.ItemID
}

// Push offers an item.
func (c *Collector) Push(id string, score float64) {
	// Small enough to be inlined: the caller calls Heap.Push directly.
	c.h.Push(Entry[float64, string, struct{}]{Score: score, Tie: id})
}

// Admits reports whether Push would keep the item: a caller whose check of
// an item costs more than a comparison (an allow filter's map lookup) asks
// first and pays for the check only when the item can make the top K.
func (c *Collector) Admits(id string, score float64) bool {
	return c.h.Admits(Entry[float64, string, struct{}]{Score: score, Tie: id})
}

// Full reports whether K items are held; a caller scanning items in descending
// score order can stop once it is full.
func (c *Collector) Full() bool { return c.h.Full() }

// Len is the number of items held.
func (c *Collector) Len() int { return c.h.Len() }

// Sorted returns the items held, best first. The Collector stays usable.
func (c *Collector) Sorted() []models.Scored {
	held := c.h.Entries()
	out := make([]models.Scored, len(held))
	for i, e := range held {
		out[i] = models.Scored{ItemID: e.Tie, Score: e.Score}
	}
	slices.SortFunc(out, func(a, b models.Scored) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	return out
}
