package userknn

import (
	"math"
	"slices"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/topk"
	"github.com/recserve/recserve/models/vocab"
)

// Vectorizer turns a history into a sparse value vector: the distinct items
// of the vocabulary it touches, ascending, with the value of each (the
// event-weighted sum, damped as Options.Damping says). Training and serving
// both use it, so a user's training vector and the vector of the same history
// at serving time are identical. A Vectorizer reuses its buffers and is not
// safe for concurrent use.
type Vectorizer struct {
	items   *vocab.Vocab
	weights models.EventWeights
	damping Damping
	sum     []float64 // per item; zero outside touched
	mark    []bool    // per item; true exactly for touched
	touched []int32
	vals    []float32
}

// NewVectorizer returns a Vectorizer over items with o's weights and damping.
func NewVectorizer(items *vocab.Vocab, o Options) *Vectorizer {
	return &Vectorizer{
		items:   items,
		weights: o.Weights,
		damping: o.Damping,
		sum:     make([]float64, items.Len()),
		mark:    make([]bool, items.Len()),
	}
}

// Vector returns history's vector. Items outside the vocabulary are skipped.
// The returned slices are overwritten by the next call.
func (z *Vectorizer) Vector(history []dataset.Interaction) (items []int32, values []float32) {
	z.touched = z.touched[:0]
	for _, in := range history {
		i, ok := z.items.Index(in.ItemID)
		if !ok {
			continue
		}
		if !z.mark[i] {
			z.mark[i] = true
			z.touched = append(z.touched, i)
		}
		z.sum[i] += z.weights.Of(in)
	}
	slices.Sort(z.touched)
	z.vals = z.vals[:0]
	for _, i := range z.touched {
		z.vals = append(z.vals, damp(z.sum[i], z.damping))
		z.sum[i], z.mark[i] = 0, false
	}
	return z.touched, z.vals
}

// damp maps a summed weight to a value. Non-finite sums (only reachable with
// absurd rating values) become 0, so no NaN enters a model.
func damp(s float64, d Damping) float32 {
	if d == LogDamping {
		s = math.Copysign(math.Log1p(math.Abs(s)), s)
	}
	v := float32(s)
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return 0
	}
	return v
}

// pairStats accumulates the co-rating statistics of the query user (x) and
// one stored user (y) over their co-rated items. Cosine uses only n and sxy.
type pairStats struct {
	sx, sy, sxx, syy, sxy float64
	n                     int32
}

// zeroVariance is the relative variance below which a user's values over the
// co-rated items count as constant.
const zeroVariance = 1e-9

// pearson is the correlation of the co-rated values, centred on their means
// over the co-rated items; 0 when either side is constant (or n < 2). It is
// symmetric in x and y bit for bit: swapping them swaps commutative operands.
func (a *pairStats) pearson() float64 {
	if a.n < 2 {
		return 0
	}
	n := float64(a.n)
	vx := a.sxx - a.sx*a.sx/n
	vy := a.syy - a.sy*a.sy/n
	if vx <= zeroVariance*a.sxx || vy <= zeroVariance*a.syy {
		return 0
	}
	r := (a.sxy - a.sx*a.sy/n) / math.Sqrt(vx*vy)
	return max(-1, min(1, r))
}

// cosine is Σxy over the co-rated items divided by the norms of the users'
// whole vectors; 0 when a norm is 0.
func (a *pairStats) cosine(nx, ny float64) float64 {
	if nx == 0 || ny == 0 {
		return 0
	}
	return max(-1, min(1, a.sxy/(nx*ny)))
}

// similarity is the final similarity of a pair: the chosen measure times the
// significance weight min(n, γ)/γ, rounded to float32; 0 below MinCommon.
func (o *Options) similarity(a *pairStats, nx, ny float64) float32 {
	if int(a.n) < o.MinCommon {
		return 0
	}
	var s float64
	if o.Similarity == Cosine {
		s = a.cosine(nx, ny)
	} else {
		s = a.pearson()
	}
	if o.Shrinkage > 0 {
		s *= min(float64(a.n), o.Shrinkage) / o.Shrinkage
	}
	return float32(s)
}

// better reports whether neighbour a ranks before b: higher similarity, then
// lower user index (user ids are sorted, so: smaller id).
func better(a, b Neighbor) bool {
	if a.Similarity != b.Similarity {
		return a.Similarity > b.Similarity
	}
	return a.User < b.User
}

// scratch is one request's working memory, pooled per model. Dense arrays are
// all-zero between uses: whoever dirties an entry cleans it.
type scratch struct {
	vec     *Vectorizer
	acc     []pairStats // per user of a block, allocated on first search
	touched []int32     // users with acc entries
	cursor  []int32     // per query item: inverted-list position
	nb      []Neighbor  // the sorted neighbours
	pred    []itemAcc   // per item: the prediction's sums
	cands   []int32     // items with pred.den > 0
	// nbHeap is the search's neighbour heap (the user index as Tie); heap
	// is Recommend's candidate heap (the item's rank as Tie, the item as
	// Value).
	nbHeap []topk.Entry[float32, int32, struct{}]
	heap   []topk.Entry[float64, int32, int32]
}

// itemAcc holds one candidate item's prediction sums over the neighbours v
// who have it: num = Σ sim·(x_vi − x̄_v), den = Σ |sim| (> 0 once touched).
type itemAcc struct {
	num, den float64
}

func (m *Model) newScratch() any {
	ni := m.items.Len()
	return &scratch{
		vec:  NewVectorizer(m.items, m.opts),
		pred: make([]itemAcc, ni),
	}
}

func (m *Model) getScratch() *scratch  { return m.pool.Get().(*scratch) }
func (m *Model) putScratch(s *scratch) { m.pool.Put(s) }

// NeighborsOf computes user u's neighbours against every other stored user:
// the same search the online path runs for a query, with u's stored vector as
// the query. The trainer calls it for every user to precompute the
// neighbours; it is safe for concurrent use. The result is freshly allocated.
func (m *Model) NeighborsOf(u int32) []Neighbor {
	s := m.getScratch()
	defer m.putScratch(s)
	lo, hi := m.uoff[u], m.uoff[u+1]
	return slices.Clone(m.search(s, m.uitem[lo:hi], m.uval[lo:hi], u))
}

// search returns the top Options.Neighbors users by similarity to the query
// vector (qi ascending item indices, qv values), excluding user self (-1:
// none), best first. It touches only users who share an item with the query,
// through the inverted index. The result lives in s.nb.
func (m *Model) search(s *scratch, qi []int32, qv []float32, self int32) []Neighbor {
	h := m.searchScatter(s, qi, qv, self)
	best := h.Sorted()
	s.nbHeap = best[:0]
	nb := s.nb[:0]
	for _, e := range best {
		nb = append(nb, Neighbor{User: e.Tie, Similarity: e.Score})
	}
	s.nb = nb
	return nb
}

// userBlock is how many users a search accumulates at a time: a block's
// accumulators (48 bytes each) stay in a core's L2 cache.
const userBlock = 4096

// searchScatter accumulates the co-rating statistics of every user sharing an
// item with the query by scanning the query items' inverted lists, then
// computes their similarities. Its cost is Σ over the query's items of the
// item's user count. Users are processed in blocks of userBlock (the lists
// are sorted by user, so each list is scanned once, a cursor per query item
// moving from block to block), which keeps the randomly accessed
// accumulators cache-resident however many users the model has.
func (m *Model) searchScatter(s *scratch, qi []int32, qv []float32, self int32) topk.Heap[float32, int32, struct{}] {
	nu := int32(len(m.users))
	if s.acc == nil {
		s.acc = make([]pairStats, min(nu, userBlock))
	}
	acc := s.acc
	cur := slices.Grow(s.cursor[:0], len(qi))[:len(qi)]
	qnorm := 0.0
	for k, i := range qi {
		cur[k] = m.ioff[i]
		qnorm += float64(qv[k]) * float64(qv[k])
	}
	qnorm = math.Sqrt(qnorm)
	cosine := m.opts.Similarity == Cosine
	h := topk.Bounded(m.opts.Neighbors, s.nbHeap)
	// With significance weighting a pair's Pearson similarity is at most
	// min(n, γ)/γ (|r| ≤ 1): once the neighbourhood is full, pairs whose
	// bound is below its worst member are skipped without computing r. The
	// float32 rounding is monotonic, so the skip is exact.
	bounded := !cosine && m.opts.Shrinkage > 0
	gamma := m.opts.Shrinkage
	for lo := int32(0); lo < nu; lo += userBlock {
		hi := min(nu, lo+userBlock)
		touched := s.touched[:0]
		for q, i := range qi {
			e, end := cur[q], m.ioff[i+1]
			if e == end {
				continue
			}
			x := float64(qv[q])
			if cosine {
				for ; e < end; e++ {
					v := m.iuser[e]
					if v >= hi {
						break
					}
					a := &acc[v-lo]
					if a.n == 0 {
						touched = append(touched, v)
					}
					a.n++
					a.sxy += x * float64(m.ival[e])
				}
			} else {
				xx := x * x
				for ; e < end; e++ {
					v := m.iuser[e]
					if v >= hi {
						break
					}
					a := &acc[v-lo]
					if a.n == 0 {
						touched = append(touched, v)
					}
					y := float64(m.ival[e])
					a.n++
					a.sx += x
					a.sy += y
					a.sxx += xx
					a.syy += y * y
					a.sxy += x * y
				}
			}
			cur[q] = e
		}
		for _, v := range touched {
			a := &acc[v-lo]
			if v != self && !(bounded && h.Full() && float32(min(float64(a.n), gamma)/gamma) < h.Top().Score) {
				if sim := m.opts.similarity(a, qnorm, m.norms[v]); sim > 0 {
					if e := (topk.Entry[float32, int32, struct{}]{Score: sim, Tie: v}); h.Admits(e) {
						h.Push(e)
					}
				}
			}
			*a = pairStats{}
		}
		s.touched = touched
	}
	s.cursor = cur
	return h
}

// add accumulates one co-rated item with values x (query) and y (stored
// user).
func (a *pairStats) add(x, y float64) {
	a.n++
	a.sx += x
	a.sy += y
	a.sxx += x * x
	a.syy += y * y
	a.sxy += x * y
}
