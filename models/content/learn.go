package content

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/vocab"
)

// Model is a loaded content model that follows the catalogue (see the
// package documentation). It is safe for concurrent use: queries read an
// immutable index through an atomic pointer, LearnItems is serialised by a
// mutex.
type Model struct {
	cur atomic.Pointer[core]
	mu  sync.Mutex // serialises LearnItems
}

var (
	_ models.Recommender      = (*Model)(nil)
	_ models.Scorer           = (*Model)(nil)
	_ models.ItemSimilarity   = (*Model)(nil)
	_ models.CatalogueLearner = (*Model)(nil)
)

func newModel(c *core) *Model {
	m := &Model{}
	m.cur.Store(c)
	return m
}

// delta is what a core learned from the catalogue since its trained index
// was built. It is immutable once published; LearnItems copies it.
type delta struct {
	ids   []string           // added items: index items.Len()+k is ids[k]
	index map[string]int32   // added id → index
	vec   map[int32]Vector   // index → vector of every added or re-described item
	gone  map[int32]struct{} // deleted indices
	fix   []fixed            // vec and gone as a list, for the query path
}

// fixed is an item whose score a query corrects.
type fixed struct {
	i    int32
	v    Vector
	gone bool
}

func (d *delta) clone() *delta {
	if d == nil {
		return &delta{index: map[string]int32{}, vec: map[int32]Vector{}, gone: map[int32]struct{}{}}
	}
	return &delta{
		ids:   slices.Clone(d.ids),
		index: cloneMap(d.index),
		vec:   cloneMap(d.vec),
		gone:  cloneMap(d.gone),
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// size is the number of item indices: trained and added.
func (m *core) size() int {
	if m.delta == nil {
		return m.items.Len()
	}
	return m.items.Len() + len(m.delta.ids)
}

// lookup returns the index of an item the model knows (trained or added,
// not deleted).
func (m *core) lookup(id string) (int32, bool) {
	i, ok := m.items.Index(id)
	d := m.delta
	if d == nil {
		return i, ok
	}
	if !ok {
		if i, ok = d.index[id]; !ok {
			return 0, false
		}
	}
	if _, gone := d.gone[i]; gone {
		return 0, false
	}
	return i, true
}

// id returns the id of item index i.
func (m *core) id(i int32) string {
	if n := m.items.Len(); int(i) >= n {
		return m.delta.ids[int(i)-n]
	}
	return m.items.ID(i)
}

// row returns the terms and weights of item index i, sharing the model's
// memory.
func (m *core) row(i int32) ([]int32, []float32) {
	if m.delta != nil {
		if v, ok := m.delta.vec[i]; ok {
			return v.Terms, v.Weights
		}
		if int(i) >= m.items.Len() {
			return nil, nil
		}
	}
	lo, hi := m.rowPtr[i], m.rowPtr[i+1]
	return m.rowTerm[lo:hi], m.rowW[lo:hi]
}

// Vectorize returns it's TF-IDF vector in the model's term space: the
// trained analyzer's term frequencies times the trained idf, L2-normalised.
// Terms the model does not know are dropped; an item with none of its terms
// has an empty vector.
func (m *Model) Vectorize(it dataset.Item) Vector { return m.cur.Load().vectorize(it) }

func (m *core) vectorize(it dataset.Item) Vector {
	tf := m.analyzer.TermFreqs(it)
	terms := make([]int32, 0, len(tf))
	ws := make([]float64, 0, len(tf))
	for term, f := range tf {
		if t, ok := slices.BinarySearch(m.terms, term); ok && f > 0 {
			terms = append(terms, int32(t))
			ws = append(ws, f*float64(m.idf[t]))
		}
	}
	return UnitVector(terms, ws)
}

// UnitVector returns the sparse vector of the (term, weight) pairs, sorted by
// term and L2-normalised, dropping weights that round to zero; empty when
// the weights have no usable norm. The trainer and LearnItems both build
// item vectors with it, so a learned item is vectorised as a trained one.
// terms must be distinct; the slices are reordered.
func UnitVector(terms []int32, weights []float64) Vector {
	idx := make([]int, len(terms))
	for k := range idx {
		idx[k] = k
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(terms[a], terms[b]) })
	// Summed in term order, so the norm does not depend on the input order.
	ss := 0.0
	for _, k := range idx {
		ss += weights[k] * weights[k]
	}
	norm := math.Sqrt(ss)
	if len(idx) == 0 || !(norm > 0) || math.IsInf(norm, 0) {
		return Vector{}
	}
	v := Vector{Terms: make([]int32, 0, len(idx)), Weights: make([]float32, 0, len(idx))}
	for _, k := range idx {
		if w := float32(weights[k] / norm); w > 0 {
			v.Terms = append(v.Terms, terms[k])
			v.Weights = append(v.Weights, w)
		}
	}
	return v
}

// Fold bounds of the delta: it is folded into a rebuilt index once it holds
// more than a sixteenth of the catalogue, within these bounds, since every
// query pays for its vectors.
const (
	foldMin = 64
	foldMax = 1024
)

// LearnItems implements models.CatalogueLearner: upserted items are
// vectorised (see Vectorize) and become recommendable, and answer
// SimilarItems, at once; an upsert of a known item with new text
// re-vectorises it (with unchanged text it changes nothing); deleted items
// leave every answer and are unknown to SimilarItems. It costs the size of
// the delta, or a rebuild of the index when the delta outgrows its bound.
func (m *Model) LearnItems(upserted []dataset.Item, deleted []string) {
	if len(upserted)+len(deleted) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.cur.Load()
	d := c.delta.clone()
	n := c.items.Len()
	changed := false
	for _, it := range upserted {
		if it.ID == "" {
			continue
		}
		v := c.vectorize(it)
		i, ok := c.items.Index(it.ID)
		if !ok {
			if i, ok = d.index[it.ID]; !ok {
				i = int32(n + len(d.ids))
				d.ids = append(d.ids, it.ID)
				d.index[it.ID] = i
			}
		}
		if _, gone := d.gone[i]; !gone && int(i) < n {
			if _, learned := d.vec[i]; !learned && sameVector(v, c.vector(i)) {
				continue // a price or stock update: the text did not change
			}
		}
		delete(d.gone, i)
		d.vec[i] = v
		changed = true
	}
	for _, id := range deleted {
		i, ok := c.items.Index(id)
		if !ok {
			i, ok = d.index[id]
		}
		if !ok {
			continue
		}
		if _, gone := d.gone[i]; gone {
			continue
		}
		d.gone[i] = struct{}{}
		delete(d.vec, i)
		changed = true
	}
	if !changed {
		return
	}
	for i, v := range d.vec {
		d.fix = append(d.fix, fixed{i: i, v: v})
	}
	for i := range d.gone {
		d.fix = append(d.fix, fixed{i: i, gone: true})
	}
	slices.SortFunc(d.fix, func(a, b fixed) int { return cmp.Compare(a.i, b.i) })
	next := *c
	next.delta = d
	if len(d.fix) > min(max(n/16, foldMin), foldMax) {
		if folded, err := next.fold(); err == nil {
			m.cur.Store(folded)
			return
		}
		// A fold rebuilds from vectors that were validated already; should
		// it fail all the same, the delta keeps serving.
	}
	m.cur.Store(&next)
}

func sameVector(a, b Vector) bool {
	return slices.Equal(a.Terms, b.Terms) && slices.Equal(a.Weights, b.Weights)
}

// fold rebuilds the index with the delta in it: deleted items leave the
// vocabulary, added ones join it at the end.
func (m *core) fold() (*core, error) {
	var ids []string
	rowPtr := []int{0}
	var rowTerm []int32
	var rowW []float32
	for i := range int32(m.size()) {
		if _, gone := m.delta.gone[i]; gone {
			continue
		}
		ids = append(ids, m.id(i))
		t, w := m.row(i)
		rowTerm, rowW = append(rowTerm, t...), append(rowW, w...)
		rowPtr = append(rowPtr, len(rowTerm))
	}
	items, err := vocab.New(ids)
	if err != nil {
		return nil, err
	}
	c, err := build(items, m.terms, m.idf, rowPtr, rowTerm, rowW, m.analyzer, m.opts)
	if err != nil {
		return nil, err
	}
	c.pool = m.pool // same terms: the scratch fits (scores grow on demand)
	return c, nil
}
