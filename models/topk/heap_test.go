package topk

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// e is a test entry: a float64 score, a string tie (as Collector's item ids)
// and an int payload that must travel with it.
type e = Entry[float64, string, int]

func ent(tie string, score float64) e {
	return e{Score: score, Tie: tie, Value: len(tie)*1000 + int(score)}
}

// ties lists the entries' ties, in order, checking that each kept its payload.
func ties(t *testing.T, es []e) []string {
	t.Helper()
	out := []string{}
	for _, x := range es {
		if x.Value != len(x.Tie)*1000+int(x.Score) {
			t.Errorf("entry %v lost its value", x)
		}
		out = append(out, x.Tie)
	}
	return out
}

func TestEntryBetter(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		a, b e
		want bool
	}{
		{ent("b", 2), ent("a", 1), true},
		{ent("a", 1), ent("b", 2), false},
		{ent("a", 1), ent("b", 1), true}, // tie: smaller first
		{ent("b", 1), ent("a", 1), false},
		{ent("a", 1), ent("a", 1), false}, // equal: neither
		{ent("a", -1), ent("b", math.Inf(-1)), true},
		{e{Score: nan, Tie: "a"}, ent("b", 1), false}, // NaN ranks before nothing
		{ent("b", 1), e{Score: nan, Tie: "a"}, false},
	}
	for _, tt := range tests {
		if got := tt.a.Better(tt.b); got != tt.want {
			t.Errorf("%v.Better(%v) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestBounded(t *testing.T) {
	tests := []struct {
		name     string
		k        int
		in       []e
		kept     []bool // Push's answer for each entry
		want     []string
		wantFull bool
	}{
		{"empty", 3, nil, nil, []string{}, false},
		{"k zero", 0, []e{ent("a", 1)}, []bool{false}, []string{}, true},
		{"k negative", -2, []e{ent("a", 1)}, []bool{false}, []string{}, true},
		{"k larger than n", 5, []e{ent("a", 1), ent("b", 3), ent("c", 2)}, []bool{true, true, true}, []string{"b", "c", "a"}, false},
		{"k equal to n", 2, []e{ent("a", 1), ent("b", 2)}, []bool{true, true}, []string{"b", "a"}, true},
		{"keeps best", 2, []e{ent("a", 1), ent("b", 3), ent("c", 2), ent("d", 0), ent("e", 4)}, []bool{true, true, true, false, true}, []string{"e", "b"}, true},
		{"ties by tie", 2, []e{ent("c", 1), ent("a", 1), ent("b", 1)}, []bool{true, true, true}, []string{"a", "b"}, true},
		{"tie loses to the worst held", 2, []e{ent("a", 1), ent("b", 1), ent("c", 1)}, []bool{true, true, false}, []string{"a", "b"}, true},
		{"equal to the worst held is turned down", 1, []e{ent("a", 1), ent("a", 1)}, []bool{true, false}, []string{"a"}, true},
		{"score beats tie", 2, []e{ent("a", 1), ent("b", 1), ent("z", 2)}, []bool{true, true, true}, []string{"z", "a"}, true},
		{"negative and infinite scores", 3, []e{ent("a", -1), ent("b", math.Inf(-1)), ent("c", math.Inf(1)), ent("d", 0)}, []bool{true, true, true, true}, []string{"c", "d", "a"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Bounded(tt.k, []e{ent("stale", 9)}) // buf's contents are discarded
			for i, x := range tt.in {
				if got := h.Push(x); got != tt.kept[i] {
					t.Errorf("Push(%v) = %v; want %v", x, got, tt.kept[i])
				}
			}
			if got := h.Full(); got != tt.wantFull {
				t.Errorf("Full() = %v; want %v", got, tt.wantFull)
			}
			if got := h.Len(); got != len(tt.want) {
				t.Errorf("Len() = %d; want %d", got, len(tt.want))
			}
			if h.Len() > 0 {
				if got, want := h.Top().Tie, tt.want[len(tt.want)-1]; got != want {
					t.Errorf("Top() = %q; want the worst held, %q", got, want)
				}
			}
			if got := ties(t, h.Sorted()); !slices.Equal(got, tt.want) {
				t.Errorf("Sorted() = %v; want %v", got, tt.want)
			}
			if h.Len() != 0 {
				t.Errorf("Len() after Sorted = %d; want 0", h.Len())
			}
		})
	}
}

func TestBestFirst(t *testing.T) {
	tests := []struct {
		name string
		in   []e
		push []e // pushed after building
		want []string
	}{
		{"empty", nil, nil, []string{}},
		{"one", []e{ent("a", 1)}, nil, []string{"a"}},
		{"rank order", []e{ent("a", 1), ent("b", 3), ent("c", 2), ent("d", 0)}, nil, []string{"b", "c", "a", "d"}},
		{"ties by tie", []e{ent("c", 1), ent("a", 1), ent("d", 2), ent("b", 1)}, nil, []string{"d", "a", "b", "c"}},
		{"push after building", []e{ent("a", 1), ent("c", 3)}, []e{ent("b", 2), ent("d", 4), ent("e", 0)}, []string{"d", "c", "b", "a", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := BestFirst(slices.Clone(tt.in))
			for _, x := range tt.push {
				if !h.Push(x) {
					t.Errorf("Push(%v) = false; a best-first heap keeps everything", x)
				}
			}
			if h.Full() {
				t.Error("Full() = true; a best-first heap is never full")
			}
			if h.Len() > 0 {
				if got := h.Top().Tie; got != tt.want[0] {
					t.Errorf("Top() = %q; want the best, %q", got, tt.want[0])
				}
			}
			var popped []e
			for {
				x, ok := h.Pop()
				if !ok {
					break
				}
				popped = append(popped, x)
			}
			if got := ties(t, popped); !slices.Equal(got, tt.want) {
				t.Errorf("Pop order = %v; want %v", got, tt.want)
			}
			// Sorted agrees with the pop order.
			h = BestFirst(slices.Clone(tt.in))
			for _, x := range tt.push {
				h.Push(x)
			}
			if got := ties(t, h.Sorted()); !slices.Equal(got, tt.want) {
				t.Errorf("Sorted() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestReplaceTop(t *testing.T) {
	h := Bounded(3, []e(nil))
	for _, x := range []e{ent("a", 5), ent("b", 4), ent("c", 3)} {
		h.Push(x)
	}
	h.ReplaceTop(ent("d", 6)) // c, the worst, goes
	if got := h.Top().Tie; got != "b" {
		t.Errorf("Top() after ReplaceTop = %q; want b", got)
	}
	if got := ties(t, h.Sorted()); !slices.Equal(got, []string{"d", "a", "b"}) {
		t.Errorf("Sorted() = %v; want [d a b]", got)
	}
	// On a best-first heap it replaces the best.
	h = BestFirst([]e{ent("a", 5), ent("b", 4), ent("c", 3)})
	h.ReplaceTop(ent("d", 1))
	if got := ties(t, h.Sorted()); !slices.Equal(got, []string{"b", "c", "d"}) {
		t.Errorf("Sorted() = %v; want [b c d]", got)
	}
}

// TestHeapMatchesSort checks both orientations against sorting everything,
// over random sizes (k from 0 to above n) and scores with many ties.
func TestHeapMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		n, k := r.IntN(300), r.IntN(50)
		rank := r.Perm(n) // unique ties in random order, as item ranks
		all := make([]Entry[float32, int32, int32], n)
		for i := range all {
			all[i] = Entry[float32, int32, int32]{Score: float32(r.IntN(1 + trial%30)), Tie: int32(rank[i]), Value: int32(i)}
		}
		want := slices.Clone(all)
		sort.Slice(want, func(i, j int) bool { return want[i].Better(want[j]) })

		b := Bounded(k, make([]Entry[float32, int32, int32], 0, r.IntN(k+1)))
		for _, x := range all {
			b.Push(x)
		}
		if got := b.Sorted(); !slices.Equal(got, want[:min(k, n)]) {
			t.Fatalf("trial %d (n %d, k %d): bounded Sorted() = %v; want %v", trial, n, k, got, want[:min(k, n)])
		}

		f := BestFirst(slices.Clone(all))
		var popped []Entry[float32, int32, int32]
		for range k {
			x, ok := f.Pop()
			if !ok {
				break
			}
			popped = append(popped, x)
		}
		if !slices.Equal(popped, want[:min(k, n)]) {
			t.Fatalf("trial %d (n %d, k %d): best-first pops = %v; want %v", trial, n, k, popped, want[:min(k, n)])
		}
		if got := f.Sorted(); !slices.Equal(got, want[len(popped):]) {
			t.Fatalf("trial %d: best-first Sorted() after %d pops = %v; want %v", trial, len(popped), got, want[len(popped):])
		}
	}
}

// TestHeapAllocs: once its storage has the room, a heap allocates nothing.
func TestHeapAllocs(t *testing.T) {
	const n, k = 500, 20
	r := rand.New(rand.NewPCG(5, 6))
	in := make([]Entry[float64, string, struct{}], n)
	for i := range in {
		in[i] = Entry[float64, string, struct{}]{Score: r.Float64(), Tie: "x"}
	}
	buf := make([]Entry[float64, string, struct{}], 0, k)
	all := make([]Entry[float64, string, struct{}], n)
	allocs := testing.AllocsPerRun(100, func() {
		h := Bounded(k, buf)
		for _, x := range in {
			h.Push(x)
		}
		_ = h.Sorted()
		copy(all, in)
		f := BestFirst(all)
		for range k {
			f.Pop()
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run; want 0", allocs)
	}
}

// TestBoundedBeforeFull: a bounded heap that is not full yet has its worst
// entry on top all the same, and keeps working after a Pop.
func TestBoundedBeforeFull(t *testing.T) {
	h := Bounded(5, []e(nil))
	for _, x := range []e{ent("b", 2), ent("a", 1), ent("c", 3)} {
		h.Push(x)
	}
	if got := h.Top().Tie; got != "a" {
		t.Errorf("Top() = %q; want a, the worst held", got)
	}
	h.Push(ent("d", 0))
	if x, ok := h.Pop(); !ok || x.Tie != "d" {
		t.Errorf("Pop() = %v, %v; want d, the worst held", x, ok)
	}
	for _, x := range []e{ent("e", 5), ent("f", 4), ent("g", 6), ent("h", 0.5)} {
		h.Push(x)
	}
	if got := ties(t, h.Sorted()); !slices.Equal(got, []string{"g", "e", "f", "c", "b"}) {
		t.Errorf("Sorted() = %v; want [g e f c b]", got)
	}
}
