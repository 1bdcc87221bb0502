// Package topk selects the K best scored items in O(n log K) with a bounded
// min-heap. Every model uses it, so ties break the same way everywhere: a higher
// score first, then the lexicographically smaller item id, which makes answers
// deterministic.
package topk

import (
	"slices"

	"github.com/recserve/recserve/models"
)

// Collector keeps the K best items pushed so far. The zero value is not usable;
// call New. A Collector is not safe for concurrent use.
type Collector struct {
	k int
	h minHeap
}

// New returns a Collector for the best k items; k <= 0 collects nothing.
func New(k int) *Collector {
	if k < 0 {
		k = 0
	}
	return &Collector{k: k, h: make(minHeap, 0, min(k, 1024))}
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
	s := models.Scored{ItemID: id, Score: score}
	if len(c.h) < c.k {
		c.h = append(c.h, s)
		c.h.up(len(c.h) - 1)
		return
	}
	if c.k == 0 || !better(s, c.h[0]) {
		return
	}
	c.h[0] = s
	c.h.down(0)
}

// Full reports whether K items are held; a caller scanning items in descending
// score order can stop once it is full.
func (c *Collector) Full() bool { return len(c.h) >= c.k }

// Len is the number of items held.
func (c *Collector) Len() int { return len(c.h) }

// Sorted returns the items held, best first. The Collector stays usable.
func (c *Collector) Sorted() []models.Scored {
	out := slices.Clone([]models.Scored(c.h))
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

// minHeap has the worst held item at index 0. It is hand-rolled rather than
// container/heap, whose interface boxing allocates on every push.
type minHeap []models.Scored

func (h minHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !better(h[parent], h[i]) {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func (h minHeap) down(i int) {
	n := len(h)
	for {
		worst := i
		if l := 2*i + 1; l < n && better(h[worst], h[l]) {
			worst = l
		}
		if r := 2*i + 2; r < n && better(h[worst], h[r]) {
			worst = r
		}
		if worst == i {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}
