package content

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/topk"
)

// scratch is the per-request working memory, reused through the pool. Between
// uses every entry of scores, acc and prof is zero and the lists are empty.
type scratch struct {
	scores  []float32 // item index → accumulated dot product
	touched []int32   // items with a non-zero score, unless dense
	dense   bool      // scores were accumulated without listing touched
	acc     []float64 // term index → raw profile weight
	prof    []float32 // term index → normalised profile weight
	pterms  []int32   // profile terms, ascending once built
	hist    [scoreBuckets]int32
	tw      []termWeight // profile terms being cut to the heaviest
}

// termWeight is a profile term and its raw weight.
type termWeight struct {
	w float64
	t int32
}

// heavier orders profile terms by weight, then by term index.
func heavier(a, b termWeight) bool { return a.w > b.w || (a.w == b.w && a.t < b.t) }

// selectHeaviest reorders a so that a[:k] holds its k heaviest terms, in
// expected linear time (quickselect; every pair is distinct, so the set is
// unique). 0 < k <= len(a).
func selectHeaviest(a []termWeight, k int) {
	lo, hi, target := 0, len(a)-1, k-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// Median of three as the pivot.
		if heavier(a[mid], a[lo]) {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if heavier(a[hi], a[lo]) {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if heavier(a[hi], a[mid]) {
			a[hi], a[mid] = a[mid], a[hi]
		}
		pivot := a[mid]
		i, j := lo, hi
		for i <= j {
			for heavier(a[i], pivot) {
				i++
			}
			for heavier(pivot, a[j]) {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case target <= j:
			hi = j
		case target >= i:
			lo = i
		default:
			return
		}
	}
}

// getScratch takes a scratch from the pool with room for every item index.
func (m *core) getScratch() *scratch {
	s := m.pool.Get().(*scratch)
	if n := m.size(); len(s.scores) < n {
		s.scores = make([]float32, n)
	}
	return s
}

func (m *core) putScratch(s *scratch) {
	if s.dense {
		clear(s.scores)
	} else {
		for _, i := range s.touched {
			s.scores[i] = 0
		}
	}
	s.dense = false
	for _, t := range s.pterms {
		s.acc[t] = 0
		s.prof[t] = 0
	}
	s.touched, s.pterms = s.touched[:0], s.pterms[:0]
	m.pool.Put(s)
}

// profile builds the normalised profile of history into s.prof / s.pterms and
// reports whether it is non-empty. Items the model does not know are
// ignored.
func (m *core) profile(history []dataset.Interaction, s *scratch) bool {
	hl := m.opts.HalfLifeDays
	newest := math.Inf(-1)
	if hl > 0 {
		for _, in := range history {
			newest = max(newest, float64(in.Timestamp))
		}
	}
	for _, in := range history {
		i, ok := m.lookup(in.ItemID)
		if !ok {
			continue
		}
		w := m.opts.Weights.Of(in)
		if hl > 0 {
			if age := (newest - float64(in.Timestamp)) / 86400; age > 0 {
				w *= math.Exp2(-age / hl)
			}
		}
		if !(w > 0) || math.IsInf(w, 0) {
			continue
		}
		terms, ws := m.row(i)
		ws = ws[:len(terms)]
		for j, t := range terms {
			v := w * float64(ws[j])
			if v == 0 {
				continue // underflow; keeps acc[t] > 0 for every listed term
			}
			if s.acc[t] == 0 {
				s.pterms = append(s.pterms, t)
			}
			s.acc[t] += v
		}
	}
	if len(s.pterms) == 0 {
		return false
	}
	if k := m.opts.ProfileTerms; k > 0 && len(s.pterms) > k {
		tw := s.tw[:0]
		for _, t := range s.pterms {
			tw = append(tw, termWeight{s.acc[t], t})
		}
		selectHeaviest(tw, k)
		for _, x := range tw[k:] {
			s.acc[x.t] = 0
		}
		s.pterms = s.pterms[:0]
		for _, x := range tw[:k] {
			s.pterms = append(s.pterms, x.t)
		}
		s.tw = tw[:0]
	}
	slices.Sort(s.pterms)
	ss := 0.0
	for _, t := range s.pterms {
		ss += s.acc[t] * s.acc[t]
	}
	norm := math.Sqrt(ss)
	if !(norm > 0) || math.IsInf(norm, 0) {
		return false
	}
	for _, t := range s.pterms {
		s.prof[t] = float32(s.acc[t] / norm)
	}
	return true
}

// accumulate adds prof · item for every item sharing a term with the profile,
// term by term in ascending order, so an item's sum is the one dot computes.
// With few postings it lists the items as they are first touched; with many,
// a branch-free inner loop and a later scan of every score is faster, and it
// marks s dense instead.
func (m *core) accumulate(s *scratch) {
	postings := 0
	for _, t := range s.pterms {
		postings += m.postPtr[t+1] - m.postPtr[t]
	}
	sc := s.scores[:m.size()]
	s.dense = postings*4 >= len(sc)
	for _, t := range s.pterms {
		p := s.prof[t]
		lo, hi := m.postPtr[t], m.postPtr[t+1]
		items, ws := m.postItem[lo:hi], m.postW[lo:hi]
		ws = ws[:len(items)]
		if s.dense {
			for k, i := range items {
				// The conversion rounds the product, so no fused
				// multiply-add makes this sum differ from dot's.
				sc[i] += float32(p * ws[k])
			}
			continue
		}
		for k, i := range items {
			if sc[i] == 0 {
				s.touched = append(s.touched, i)
			}
			sc[i] += float32(p * ws[k])
		}
	}
	if m.delta != nil {
		m.correct(s)
	}
}

// dot is the profile's cosine with item i, summed in the order accumulate
// uses.
func (m *core) dot(s *scratch, i int32) float32 {
	terms, ws := m.row(i)
	return dotVector(s, terms, ws)
}

// dotVector is the profile's cosine with a vector, summed in the order
// accumulate uses.
func dotVector(s *scratch, terms []int32, ws []float32) float32 {
	ws = ws[:len(terms)]
	var sum float32
	for j, t := range terms {
		if p := s.prof[t]; p != 0 {
			sum += float32(p * ws[j])
		}
	}
	return sum
}

// correct replaces the accumulated scores of the items the delta changed:
// a deleted item scores 0, an added or re-described one the cosine of its
// new vector (its trained postings, if any, were accumulated and are
// discarded).
func (m *core) correct(s *scratch) {
	sc := s.scores
	for _, f := range m.delta.fix {
		old := sc[f.i]
		var x float32
		if !f.gone {
			x = dotVector(s, f.v.Terms, f.v.Weights)
		}
		sc[f.i] = x
		if !s.dense && old == 0 && x != 0 {
			s.touched = append(s.touched, f.i)
		}
	}
}

// scoreBuckets is the resolution of the score histogram best uses to skip
// candidates that cannot make the top: bucket b holds scores in
// [b/scoreBuckets, (b+1)/scoreBuckets), the last one everything above.
const scoreBuckets = 1024

// bucket maps a score in [0, 1] (a cosine, possibly a rounding error above 1)
// to its histogram bucket.
func bucket(x float32) int { return min(int(x*scoreBuckets), scoreBuckets-1) }

// best returns at most k allowed items of positive score (never skip), best
// first. Rather than ranking every candidate, it walks the score histogram
// down from the top, a band of buckets at a time: each band holds about kk
// candidates, which are checked with allow (lazily: only candidates that may
// make the top are) and offered to a topk collector of size k. It stops once
// k allowed items are held, since every later band scores lower. slack is the
// caller's guess of how many top candidates allow rejects (the history's own
// items, typically); each further band is twice as wide.
func (m *core) best(s *scratch, k, slack int, allow func(string) bool, skip int32) []models.Scored {
	sc := s.scores[:m.size()]
	if s.dense {
		// Zeros land in bucket 0 with the tiniest scores; the floor test
		// when offering (floor > 0) leaves them out.
		for _, x := range sc {
			s.hist[bucket(x)]++
		}
		if skip >= 0 {
			s.hist[bucket(sc[skip])]--
		}
	} else {
		for _, i := range s.touched {
			if i != skip {
				s.hist[bucket(sc[i])]++
			}
		}
	}
	defer clear(s.hist[:])
	c := topk.New(k)
	kk := k + max(slack, 0) + 8
	if kk < 0 { // overflow
		kk = math.MaxInt
	}
	low, held := scoreBuckets, 0 // buckets >= low hold held candidates
	ceil := float32(math.Inf(1)) // candidates >= ceil were offered already
	for {
		for held < kk && low > 0 {
			low--
			held += int(s.hist[low])
		}
		// bucket(x) >= low ⇔ x >= floor, exactly: both scale by a power of 2.
		floor := float32(low) / scoreBuckets
		if low == 0 {
			floor = math.SmallestNonzeroFloat32
		}
		if s.dense {
			for i, x := range sc {
				if x >= floor && x < ceil && int32(i) != skip {
					if id := m.id(int32(i)); allow == nil || allow(id) {
						c.Push(id, float64(x))
					}
				}
			}
		} else {
			for _, i := range s.touched {
				if x := sc[i]; x >= floor && x < ceil && i != skip {
					if id := m.id(i); allow == nil || allow(id) {
						c.Push(id, float64(x))
					}
				}
			}
		}
		if c.Full() || low == 0 {
			return c.Sorted()
		}
		ceil = floor
		kk = max(held+1, min(2*kk, math.MaxInt/2))
	}
}

// Recommend returns at most q.K allowed items by descending cosine with the
// profile of q.History (ties by item id). Only items sharing a term with the
// profile can be returned; an empty or unknown history gives no items.
func (m *Model) Recommend(ctx context.Context, q models.Query) ([]models.Scored, error) {
	return m.cur.Load().recommend(ctx, q)
}

func (m *core) recommend(ctx context.Context, q models.Query) ([]models.Scored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.K <= 0 || len(q.History) == 0 {
		return nil, nil
	}
	s := m.getScratch()
	defer m.putScratch(s)
	if !m.profile(q.History, s) {
		return nil, nil
	}
	m.accumulate(s)
	return m.best(s, q.K, len(q.History), q.Allow, -1), nil
}

// Score returns the cosine of each item with the profile of q.History, in the
// order of itemIDs; unknown items, and every item for an empty history, score
// 0. The scores equal those Recommend gives.
func (m *Model) Score(ctx context.Context, q models.Query, itemIDs []string) ([]float64, error) {
	return m.cur.Load().score(ctx, q, itemIDs)
}

func (m *core) score(ctx context.Context, q models.Query, itemIDs []string) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]float64, len(itemIDs))
	if len(q.History) == 0 || len(itemIDs) == 0 {
		return out, nil
	}
	s := m.getScratch()
	defer m.putScratch(s)
	if !m.profile(q.History, s) {
		return out, nil
	}
	for k, id := range itemIDs {
		if i, ok := m.lookup(id); ok {
			out[k] = float64(m.dot(s, i))
		}
	}
	return out, nil
}

// SimilarItems returns at most q.K allowed items by descending cosine with
// q.ItemID (ties by item id), computed through the postings of the item's
// terms; the item itself is never returned. An unknown item is an error
// wrapping models.ErrNotFound.
func (m *Model) SimilarItems(ctx context.Context, q models.SimilarQuery) ([]models.Scored, error) {
	return m.cur.Load().similarItems(ctx, q)
}

func (m *core) similarItems(ctx context.Context, q models.SimilarQuery) ([]models.Scored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	i, ok := m.lookup(q.ItemID)
	if !ok {
		return nil, fmt.Errorf("item %q: %w", q.ItemID, models.ErrNotFound)
	}
	if q.K <= 0 {
		return nil, nil
	}
	s := m.getScratch()
	defer m.putScratch(s)
	v := m.vector(i)
	for j, t := range v.Terms {
		s.pterms = append(s.pterms, t)
		s.prof[t] = v.Weights[j]
	}
	m.accumulate(s)
	return m.best(s, q.K, 0, q.Allow, i), nil
}
