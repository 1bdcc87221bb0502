package itemknn

import (
	"context"
	"fmt"
	"math"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/topk"
)

const (
	flagCand uint8 = 1 << iota // the item has a score in scratch.score
	flagHist                   // the item has a weight in scratch.hw
)

// ctxEvery is how many history items are scored between context checks.
const ctxEvery = 256

// secondsPerDay converts timestamps (Unix seconds) to days.
const secondsPerDay = 86400

// scratch holds one request's buffers. Everything sized to the catalogue is
// reused through Model.scratch and reset on return by walking only the
// entries the request touched, so a request costs O(history × M), never
// O(catalogue).
type scratch struct {
	score   []float64 // candidate scores; 0 outside touched
	hw      []float64 // history weights; 0 outside hist
	flag    []uint8
	touched []int32 // candidates, in first-touch order
	hist    []int32 // distinct history items, in first-seen order
	// heap holds Recommend's heap of the candidates (item index as Value).
	heap []topk.Entry[float64, int32, int32]
}

func newScratch(n int) *scratch {
	return &scratch{score: make([]float64, n), hw: make([]float64, n), flag: make([]uint8, n)}
}

func (m *Model) getScratch() *scratch { return m.scratch.Get().(*scratch) }

func (m *Model) putScratch(s *scratch) {
	for _, i := range s.touched {
		s.score[i] = 0
		s.flag[i] = 0
	}
	for _, i := range s.hist {
		s.hw[i] = 0
		s.flag[i] = 0
	}
	s.touched, s.hist = s.touched[:0], s.hist[:0]
	m.scratch.Put(s)
}

// accumulate computes score(c) = Σ_h weight(h) × sim(h, c) into s for every
// neighbour c of q's known history items.
func (m *Model) accumulate(ctx context.Context, q *models.Query, s *scratch) error {
	newest := int64(math.MinInt64)
	for i := range q.History {
		newest = max(newest, q.History[i].Timestamp)
	}
	halfLife := m.opts.HalfLifeDays
	for i := range q.History {
		in := &q.History[i]
		h, ok := m.items.Index(in.ItemID)
		if !ok {
			continue
		}
		w := m.opts.Weights.Of(*in)
		if halfLife > 0 {
			w *= math.Exp2(-float64(newest-in.Timestamp) / secondsPerDay / halfLife)
		}
		if s.flag[h]&flagHist == 0 {
			s.flag[h] |= flagHist
			s.hist = append(s.hist, h)
		}
		s.hw[h] += w
	}
	for k, h := range s.hist {
		if k%ctxEvery == ctxEvery-1 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		w := s.hw[h]
		if !(w > 0) || math.IsInf(w, 0) {
			continue
		}
		w = m.opts.Damping.Apply(w)
		for _, nb := range m.nbrs[m.off[h]:m.off[h+1]] {
			j := nb.Index
			if s.flag[j]&flagCand == 0 {
				s.flag[j] |= flagCand
				s.touched = append(s.touched, j)
			}
			s.score[j] += w * float64(nb.Sim)
		}
	}
	return nil
}

// Recommend returns at most q.K allowed items by descending score, ties by
// smaller id. Items without a positive score (no history item lists them as
// a neighbour) are never returned, so a cold or unknown history gets an
// empty answer and the router's fallback. q.Allow is called lazily, on
// candidates in rank order, until K are accepted.
func (m *Model) Recommend(ctx context.Context, q models.Query) ([]models.Scored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.K <= 0 || len(q.History) == 0 {
		return nil, nil
	}
	s := m.getScratch()
	defer m.putScratch(s)
	if err := m.accumulate(ctx, &q, s); err != nil {
		return nil, err
	}
	// A max-heap over the candidates, built in O(n) and popped in rank order:
	// only the candidates examined before K are accepted pay for Allow.
	es := s.heap[:0]
	for _, i := range s.touched {
		es = append(es, topk.Entry[float64, int32, int32]{Score: s.score[i], Tie: m.rank[i], Value: i})
	}
	s.heap = es
	h := topk.BestFirst(es)
	out := make([]models.Scored, 0, min(q.K, len(s.touched)))
	for len(out) < q.K {
		e, ok := h.Pop()
		if !ok || e.Score <= 0 {
			break
		}
		if id := m.items.ID(e.Value); q.Allowed(id) {
			out = append(out, models.Scored{ItemID: id, Score: e.Score})
		}
	}
	return out, nil
}

// Score returns score(c) for each item of itemIDs, by the formula Recommend
// ranks with; unknown items score 0. Allow is not consulted.
func (m *Model) Score(ctx context.Context, q models.Query, itemIDs []string) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]float64, len(itemIDs))
	if len(q.History) == 0 || len(itemIDs) == 0 {
		return out, nil
	}
	s := m.getScratch()
	defer m.putScratch(s)
	if err := m.accumulate(ctx, &q, s); err != nil {
		return nil, err
	}
	for k, id := range itemIDs {
		if i, ok := m.items.Index(id); ok {
			out[k] = s.score[i]
		}
	}
	return out, nil
}

// SimilarItems returns the item's allowed neighbours, most similar first
// (ties by smaller index), scored by their similarity. An unknown item is an
// error wrapping models.ErrNotFound; a known item without neighbours gets an
// empty answer.
func (m *Model) SimilarItems(ctx context.Context, q models.SimilarQuery) ([]models.Scored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	i, ok := m.items.Index(q.ItemID)
	if !ok {
		return nil, fmt.Errorf("item %q: %w", q.ItemID, models.ErrNotFound)
	}
	if q.K <= 0 {
		return nil, nil
	}
	l := m.Neighbors(i)
	out := make([]models.Scored, 0, min(q.K, len(l)))
	for _, nb := range l {
		id := m.items.ID(nb.Index)
		if id == q.ItemID || !q.Allowed(id) {
			continue
		}
		out = append(out, models.Scored{ItemID: id, Score: float64(nb.Sim)})
		if len(out) == q.K {
			break
		}
	}
	return out, nil
}
