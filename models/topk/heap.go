package topk

import (
	"cmp"
	"slices"
)

// Score is the type of a ranking score: models rank by float32 (onnx,
// neighbour similarities) or float64 (everything else).
type Score interface{ ~float32 | ~float64 }

// Entry is one ranked element of a Heap. Entries rank as every answer does:
// a higher Score first, then a smaller Tie, which makes the order total and
// answers deterministic. Tie is an item id, the id's rank in sorted order, or
// a user or item index; Value carries whatever the caller needs back that Tie
// is not (an item index, say), or is struct{}.
//
// The ordering is fixed, rather than a comparison the caller supplies,
// because Go compiles a generic type's code once per shape and calls a
// type parameter's methods (or a func field) indirectly, never inlined: a
// caller-supplied comparison made the heap 23–37% slower than the
// hand-written one it replaced (docs/PERFORMANCE.md). Comparisons of Score
// and Tie with < and > compile to plain float, integer and string
// comparisons instead.
//
// Value sits between Score and Tie so that a struct{} Value costs no
// padding (a trailing zero-size field would).
type Entry[S Score, T cmp.Ordered, V any] struct {
	Score S
	Value V
	Tie   T
}

// Better reports whether e ranks before o: a higher score, or an equal score
// and a smaller tie. Entries with a NaN score rank neither before nor after
// any other (the tie is not consulted), exactly as in the hand-written heaps
// this replaced; models keep NaN scores out of their heaps.
func (e Entry[S, T, V]) Better(o Entry[S, T, V]) bool {
	if e.Score != o.Score {
		return e.Score > o.Score
	}
	return e.Tie < o.Tie
}

// Heap is a binary heap of Entries, in one of two orientations. A bounded
// heap (Bounded) keeps the k best entries pushed with the worst of them on
// top, so that a full heap turns most offers down with one comparison: the
// top-k selection every model runs. A best-first heap (BestFirst) holds
// every candidate with the best on top, built in O(n), and is popped in rank
// order, so that a caller filtering candidates (Allow) pays only for those it
// examines. It is the one heap of the models: Collector, the candidate heaps
// of itemknn, userknn and onnx, and the trainers' neighbour lists all use
// it, so ties break the same way everywhere.
//
// A Heap allocates nothing beyond growing its storage (never, once it has
// reached its bound); it is a value, not safe for concurrent use. The zero
// value is an empty bounded heap with k = 0, which keeps nothing.
type Heap[S Score, T cmp.Ordered, V any] struct {
	e         []Entry[S, T, V]
	k         int
	bestFirst bool
}

// Bounded returns an empty heap that keeps the k best entries pushed; k <= 0
// keeps nothing. It stores them in buf's backing array (its contents are
// discarded), so a caller with pooled scratch allocates nothing; a buf with
// capacity k never grows.
func Bounded[S Score, T cmp.Ordered, V any](k int, buf []Entry[S, T, V]) Heap[S, T, V] {
	return Heap[S, T, V]{e: buf[:0], k: max(k, 0)}
}

// BestFirst orders es, in place, as a heap with the best entry on top, in
// O(len(es)), and returns it: Pop then yields the entries best first. It
// suits a caller that wants the best few of many candidates but must skip an
// unknown number of them, where sorting them all would waste time. The heap
// is unbounded: Push adds to it.
func BestFirst[S Score, T cmp.Ordered, V any](es []Entry[S, T, V]) Heap[S, T, V] {
	h := Heap[S, T, V]{e: es, k: int(^uint(0) >> 1), bestFirst: true}
	for i := len(es)/2 - 1; i >= 0; i-- {
		h.down(i, es[i])
	}
	return h
}

// Len is the number of entries held.
func (h *Heap[S, T, V]) Len() int { return len(h.e) }

// Full reports whether a bounded heap holds its k entries, so that Top is the
// bar a new entry must pass; a caller scanning candidates in descending score
// can stop then. A best-first heap is never full.
func (h *Heap[S, T, V]) Full() bool { return len(h.e) >= h.k }

// Top returns the entry on top: the worst entry a bounded heap holds, or the
// best of a best-first heap. The heap must not be empty.
func (h *Heap[S, T, V]) Top() Entry[S, T, V] { return h.e[0] }

// Push offers e and reports whether the heap kept it. A bounded heap that is
// full keeps e only if it ranks before the worst entry held, which it then
// drops; a heap that is not full (a best-first heap never is) always keeps e.
// Push is too large to be inlined, so a hot loop that turns most entries
// down (the usual top-k scan) tests them first with Admits, or, once the heap
// is Full, with e.Better(Top()) and keeps them with ReplaceTop: those are
// inlined, and a rejected entry then costs no call.
func (h *Heap[S, T, V]) Push(e Entry[S, T, V]) bool {
	if len(h.e) < h.k {
		// Sift e up from the end: parents move down into the hole it
		// leaves (one copy per level, not a swap). It is not a method of
		// its own so that filling a heap costs one call per entry.
		h.e = append(h.e, e)
		es := h.e
		i := len(es) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !h.before(e, es[p]) {
				break
			}
			es[i] = es[p]
			i = p
		}
		es[i] = e
		return true
	}
	if h.k == 0 || !e.Better(h.e[0]) {
		return false
	}
	h.ReplaceTop(e)
	return true
}

// Admits reports whether Push would keep e. It is inlined (see Push).
func (h *Heap[S, T, V]) Admits(e Entry[S, T, V]) bool {
	return len(h.e) < h.k || h.k > 0 && e.Better(h.e[0])
}

// ReplaceTop puts e in place of the entry on top, without comparing: for a
// caller that has found e.Better(Top()) on a full bounded heap (see Push).
// The heap must not be empty.
func (h *Heap[S, T, V]) ReplaceTop(e Entry[S, T, V]) {
	_ = h.e[0]
	h.down(0, e)
}

// Pop removes and returns the entry on top (the best of a best-first heap,
// the worst of a bounded one); ok is false when the heap is empty.
func (h *Heap[S, T, V]) Pop() (e Entry[S, T, V], ok bool) {
	n := len(h.e) - 1
	if n < 0 {
		return e, false
	}
	e = h.e[0]
	last := h.e[n]
	h.e = h.e[:n]
	if n > 0 {
		h.down(0, last)
	}
	return e, true
}

// Entries returns the entries held, in heap order (only the top is
// meaningful), without copying them: for a caller that converts them before
// sorting and wants the heap kept. The slice must not be modified.
func (h *Heap[S, T, V]) Entries() []Entry[S, T, V] { return h.e }

// Sorted returns the entries held, best first, sorted in place, and empties
// the heap: the result shares its storage, so it is the usual last step of a
// top-k selection, and the next Bounded may reuse the result as buf. It is a
// heapsort: the top goes to the end and the heap shrinks, so a bounded heap
// (worst on top) ends best first; a best-first heap is reversed after. With
// its direct comparisons it sorts the few dozen entries of a top k in about
// half the time of slices.SortFunc.
func (h *Heap[S, T, V]) Sorted() []Entry[S, T, V] {
	es := h.e
	for n := len(es) - 1; n > 0; n-- {
		x := es[n]
		es[n] = es[0]
		h.e = es[:n]
		h.down(0, x)
	}
	h.e = es[:0]
	if h.bestFirst {
		slices.Reverse(es)
	}
	return es
}

// before reports whether a belongs above b: it ranks before b in a
// best-first heap, after it in a bounded one.
func (h *Heap[S, T, V]) before(a, b Entry[S, T, V]) bool {
	if h.bestFirst {
		return a.Better(b)
	}
	return b.Better(a)
}

// down puts x, which replaces the entry at i, in its place below i. The
// children move up into the hole (one copy per level, not a swap), and x is
// stored once, where it ends: storing it first and reading it back would
// stall on the store (its fields are written separately, read together).
// At each level it compares the left child with x, then the right child
// with the winner, as the heaps this replaced did, so that even NaN-scored
// entries (which rank neither before nor after anything) end where they
// did.
func (h *Heap[S, T, V]) down(i int, x Entry[S, T, V]) {
	e := h.e
	n := len(e)
	for {
		top, tv := i, x
		if l := 2*i + 1; l < n && h.before(e[l], tv) {
			top, tv = l, e[l]
		}
		if r := 2*i + 2; r < n && h.before(e[r], tv) {
			top, tv = r, e[r]
		}
		if top == i {
			break
		}
		e[i] = tv
		i = top
	}
	e[i] = x
}
