package userknn

import (
	"context"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/topk"
)

// neighbors finds the query's neighbours and its user's mean value. A known
// user whose history has as many events as at training takes the
// precomputed neighbours; any other query searches online, the user (if
// known) excluded. The result may live in s.
func (m *Model) neighbors(s *scratch, q *models.Query) (nb []Neighbor, mean float64, online bool) {
	self := int32(-1)
	if u, ok := m.userIdx[q.UserID]; ok && q.UserID != "" {
		if m.noff != nil && uint64(len(q.History)) == uint64(m.events[u]) {
			return m.nnb[m.noff[u]:m.noff[u+1]], float64(m.means[u]), false
		}
		self = u
	}
	qi, qv := s.vec.Vector(q.History)
	if len(qi) == 0 {
		return nil, 0, true
	}
	return m.search(s, qi, qv, self), meanOf(qv), true
}

// Neighbors returns the neighbours Recommend and Score use for q, best first,
// and whether they were computed online (false: the precomputed ones). The
// result is freshly allocated.
func (m *Model) Neighbors(ctx context.Context, q models.Query) ([]Neighbor, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	s := m.getScratch()
	defer m.putScratch(s)
	nb, _, online := m.neighbors(s, &q)
	return append([]Neighbor(nil), nb...), online, nil
}

// accumulate adds every neighbour's items to s.pred: for each item i,
// num = Σ sim·(x_vi − x̄_v) and den = Σ |sim| over the neighbours v who have
// i; s.cands lists the items touched. The caller must call reset.
func (m *Model) accumulate(s *scratch, nb []Neighbor) {
	for _, n := range nb {
		v, sim := n.User, float64(n.Similarity)
		mv := float64(m.means[v])
		abs := max(sim, -sim)
		for e := m.uoff[v]; e < m.uoff[v+1]; e++ {
			i := m.uitem[e]
			p := &s.pred[i]
			if p.den == 0 {
				s.cands = append(s.cands, i)
			}
			p.num += sim * (float64(m.uval[e]) - mv)
			p.den += abs
		}
	}
}

// reset clears what accumulate wrote.
func (s *scratch) reset() {
	for _, i := range s.cands {
		s.pred[i] = itemAcc{}
	}
	s.cands = s.cands[:0]
}

// rankScore is candidate i's ranking score; total is Σ|sim| over all the
// neighbours.
func (m *Model) rankScore(s *scratch, i int32, mean, total float64) float64 {
	if m.opts.Ranking == Pred {
		return mean + s.pred[i].num/s.pred[i].den
	}
	return (s.pred[i].num + mean*s.pred[i].den) / total
}

// Recommend returns the best allowed items among the neighbours' items (see
// the package documentation for the neighbours and the ranking).
func (m *Model) Recommend(ctx context.Context, q models.Query) ([]models.Scored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.K <= 0 {
		return nil, nil
	}
	s := m.getScratch()
	defer m.putScratch(s)
	nb, mean, _ := m.neighbors(s, &q)
	if len(nb) == 0 {
		return nil, nil
	}
	m.accumulate(s, nb)
	defer s.reset()
	total := 0.0
	for _, n := range nb {
		total += float64(max(n.Similarity, -n.Similarity))
	}
	// A best-first heap over the candidates (the item's rank in id order
	// breaks ties), built in O(n) and popped until K are allowed.
	es := s.heap[:0]
	for _, i := range s.cands {
		es = append(es, topk.Entry[float64, int32, int32]{Score: m.rankScore(s, i, mean, total), Tie: m.rank[i], Value: i})
	}
	s.heap = es[:0]
	h := topk.BestFirst(es)
	var out []models.Scored
	for h.Len() > 0 && len(out) < q.K {
		c, _ := h.Pop()
		id := m.items.ID(c.Value)
		if !q.Allowed(id) {
			continue
		}
		if out == nil {
			out = make([]models.Scored, 0, min(q.K, h.Len()+1))
		}
		out = append(out, models.Scored{ItemID: id, Score: c.Score})
	}
	return out, nil
}

// Score returns pred(u,i) for each item, in order. Items no neighbour has, and
// items the model does not know, get the user's mean value x̄_u (0 for a
// query with no known items).
func (m *Model) Score(ctx context.Context, q models.Query, itemIDs []string) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := m.getScratch()
	defer m.putScratch(s)
	nb, mean, _ := m.neighbors(s, &q)
	m.accumulate(s, nb)
	defer s.reset()
	out := make([]float64, len(itemIDs))
	for k, id := range itemIDs {
		out[k] = mean
		if i, ok := m.items.Index(id); ok && s.pred[i].den > 0 {
			out[k] = mean + s.pred[i].num/s.pred[i].den
		}
	}
	return out, nil
}
