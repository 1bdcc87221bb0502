package topk

// IndexHeap is a heap of item indices into dense score and rank arrays,
// ordered by descending score, ties by ascending rank (the item id's position
// in sorted order, so ties break as in Collector). Models that score a whole
// vocabulary use it as a max-heap built in O(n) and popped in rank order
// (only the items popped pay for a filter), or as a bounded min-heap of the
// best candidates. It allocates nothing; Idx is reordered in place.
type IndexHeap[S float32 | float64] struct {
	// Idx holds the indices; Pop moves popped ones past the heap's end, so
	// Idx keeps every index.
	Idx   []int32
	Score []S
	Rank  []int32
	n     int
}

// Better reports whether item a ranks before item b.
func (h *IndexHeap[S]) Better(a, b int32) bool {
	if sa, sb := h.Score[a], h.Score[b]; sa != sb {
		return sa > sb
	}
	return h.Rank[a] < h.Rank[b]
}

// Init orders Idx as a max-heap (the best item at the root) for Pop.
func (h *IndexHeap[S]) Init() {
	h.n = len(h.Idx)
	for i := h.n/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// Pop removes and returns the best remaining item; ok is false when the heap
// is empty.
func (h *IndexHeap[S]) Pop() (i int32, ok bool) {
	if h.n == 0 {
		return 0, false
	}
	top := h.Idx[0]
	h.n--
	h.Idx[0], h.Idx[h.n] = h.Idx[h.n], h.Idx[0]
	h.down(0)
	return top, true
}

func (h *IndexHeap[S]) down(i int) {
	idx := h.Idx[:h.n]
	for {
		best := i
		if l := 2*i + 1; l < len(idx) && h.Better(idx[l], idx[best]) {
			best = l
		}
		if r := 2*i + 2; r < len(idx) && h.Better(idx[r], idx[best]) {
			best = r
		}
		if best == i {
			return
		}
		idx[i], idx[best] = idx[best], idx[i]
		i = best
	}
}

// InitMin orders Idx as a min-heap (the worst item at the root), for
// keeping the best len(Idx) items with ReplaceMin.
func (h *IndexHeap[S]) InitMin() {
	for i := len(h.Idx)/2 - 1; i >= 0; i-- {
		h.downMin(i)
	}
}

// ReplaceMin puts item i in place of the worst item of a min-heap.
func (h *IndexHeap[S]) ReplaceMin(i int32) {
	h.Idx[0] = i
	h.downMin(0)
}

func (h *IndexHeap[S]) downMin(i int) {
	idx := h.Idx
	for {
		worst := i
		if l := 2*i + 1; l < len(idx) && h.Better(idx[worst], idx[l]) {
			worst = l
		}
		if r := 2*i + 2; r < len(idx) && h.Better(idx[worst], idx[r]) {
			worst = r
		}
		if worst == i {
			return
		}
		idx[i], idx[worst] = idx[worst], idx[i]
		i = worst
	}
}
