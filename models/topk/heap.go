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
	// filling is set while a new bounded heap takes its first k entries:
	// they are appended unordered and put in heap order in O(k) when the
	// k-th arrives (or the heap is read first), rather than sifted up one
	// by one.
	filling bool
}

// Bounded returns an empty heap that keeps the k best entries pushed; k <= 0
// keeps nothing. It stores them in buf's backing array (its contents are
// discarded), so a caller with pooled scratch allocates nothing; a buf with
// capacity k never grows.
func Bounded[S Score, T cmp.Ordered, V any](k int, buf []Entry[S, T, V]) Heap[S, T, V] {
	return Heap[S, T, V]{e: buf[:0], k: max(k, 0), filling: true}
}

// BestFirst orders es, in place, as a heap with the best entry on top, in
// O(len(es)), and returns it: Pop then yields the entries best first. It
// suits a caller that wants the best few of many candidates but must skip an
// unknown number of them, where sorting them all would waste time. The heap
// is unbounded: Push adds to it.
func BestFirst[S Score, T cmp.Ordered, V any](es []Entry[S, T, V]) Heap[S, T, V] {
	h := Heap[S, T, V]{e: es, k: int(^uint(0) >> 1), bestFirst: true}
	h.init()
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
func (h *Heap[S, T, V]) Top() Entry[S, T, V] {
	if h.filling {
		h.init()
	}
	return h.e[0]
}

// Push offers e and reports whether the heap kept it. A bounded heap that is
// full keeps e only if it ranks before the worst entry held, which it then
// drops; a heap that is not full (a best-first heap never is) always keeps e.
// Push is too large to be inlined; see Admits for loops that turn down most
// offers.
func (h *Heap[S, T, V]) Push(e Entry[S, T, V]) bool {
	if len(h.e) < h.k {
		h.e = append(h.e, e)
		if !h.filling {
			h.up(len(h.e) - 1)
		} else if len(h.e) == h.k {
			h.init()
		}
		return true
	}
	if h.k == 0 || !e.Better(h.e[0]) {
		return false
	}
	h.e[0] = e
	h.down(0)
	return true
}

// Admits reports whether Push would keep e. Unlike Push it is inlined, so a
// loop offering many entries to a full heap, most of them turned down (the
// usual top-k scan), tests each with Admits and pays for a call to Push only
// for those it keeps.
func (h *Heap[S, T, V]) Admits(e Entry[S, T, V]) bool {
	// A full heap is in heap order: filling ends when the k-th entry comes.
	return len(h.e) < h.k || h.k > 0 && e.Better(h.e[0])
}

// ReplaceTop puts e in place of the entry on top, for a caller that has
// already decided e should replace it (Push decides for a bounded heap). The
// heap must not be empty.
func (h *Heap[S, T, V]) ReplaceTop(e Entry[S, T, V]) {
	if h.filling {
		h.init()
	}
	h.e[0] = e
	h.down(0)
}

// Pop removes and returns the entry on top (the best of a best-first heap,
// the worst of a bounded one); ok is false when the heap is empty.
func (h *Heap[S, T, V]) Pop() (e Entry[S, T, V], ok bool) {
	n := len(h.e) - 1
	if n < 0 {
		return e, false
	}
	if h.filling {
		h.init()
	}
	e = h.e[0]
	h.e[0] = h.e[n]
	h.e = h.e[:n]
	h.down(0)
	return e, true
}

// Entries returns the entries held, in no particular order, without copying
// them: for a caller that converts them before sorting and wants the heap
// kept. The slice must not be modified.
func (h *Heap[S, T, V]) Entries() []Entry[S, T, V] { return h.e }

// Sorted returns the entries held, best first, sorted in place by heapsort
// (no allocation and no comparison function called indirectly), and empties
// the heap: the result shares its storage, so it is the usual last step of a
// top-k selection, and the next Bounded may reuse the result as buf.
func (h *Heap[S, T, V]) Sorted() []Entry[S, T, V] {
	if h.filling {
		h.init()
	}
	es := h.e
	for n := len(es) - 1; n > 0; n-- {
		es[0], es[n] = es[n], es[0]
		h.e = es[:n]
		h.down(0)
	}
	h.e = es[:0]
	if h.bestFirst {
		// Heapsort leaves the top's end of the order last.
		slices.Reverse(es)
	}
	return es
}

// init puts the entries in heap order, in O(n), and ends the initial fill.
func (h *Heap[S, T, V]) init() {
	h.filling = false
	for i := len(h.e)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// before reports whether a belongs above b: it ranks before b in a
// best-first heap, after it in a bounded one.
func (h *Heap[S, T, V]) before(a, b Entry[S, T, V]) bool {
	if h.bestFirst {
		return a.Better(b)
	}
	return b.Better(a)
}

func (h *Heap[S, T, V]) up(i int) {
	e := h.e
	for i > 0 {
		p := (i - 1) / 2
		if !h.before(e[i], e[p]) {
			return
		}
		e[p], e[i] = e[i], e[p]
		i = p
	}
}

func (h *Heap[S, T, V]) down(i int) {
	e := h.e
	n := len(e)
	for {
		top := i
		if l := 2*i + 1; l < n && h.before(e[l], e[top]) {
			top = l
		}
		if r := 2*i + 2; r < n && h.before(e[r], e[top]) {
			top = r
		}
		if top == i {
			return
		}
		e[i], e[top] = e[top], e[i]
		i = top
	}
}
