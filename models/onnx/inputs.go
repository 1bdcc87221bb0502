package onnx

import (
	"math"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/vocab"
)

// userVectorRow is the user_vector input of q: for every history event of a
// vocabulary item, that item's weight (models.EventWeights.Of) added to its
// slot. Events of items outside the vocabulary, and non-finite weights, are
// skipped. known reports whether any event counted (a cold or unknown
// history gives an all-zero row and known = false).
func userVectorRow(q *models.Query, items *vocab.Vocab, w models.EventWeights) (row []float32, known bool) {
	row = make([]float32, items.Len())
	for i := range q.History {
		in := &q.History[i]
		j, ok := items.Index(in.ItemID)
		if !ok {
			continue
		}
		x := w.Of(*in)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		row[j] += float32(x)
		known = true
	}
	return row, known
}

// sequenceRow is the sequence input of q, of length l: the history events
// whose type is in c.events, oldest first, mapped to vocabulary index + 1
// (0 is padding; items outside the vocabulary are skipped), with consecutive
// repeats of one item collapsed when c.dedupe, the last l kept and the row
// left-padded with 0. Deduplication runs after unknown items are dropped, so
// "a, x, a" with x unknown collapses to "a". known reports whether any item
// was kept.
func sequenceRow(q *models.Query, items *vocab.Vocab, c *config, l int) (row []int64, known bool) {
	seq := make([]int64, 0, min(len(q.History), 4*l))
	for i := range q.History {
		in := &q.History[i]
		if !c.events[in.Event] {
			continue
		}
		j, ok := items.Index(in.ItemID)
		if !ok {
			continue
		}
		v := int64(j) + 1
		if c.dedupe && len(seq) > 0 && seq[len(seq)-1] == v {
			continue
		}
		seq = append(seq, v)
	}
	if len(seq) > l {
		seq = seq[len(seq)-l:]
	}
	row = make([]int64, l)
	copy(row[l-len(seq):], seq)
	return row, len(seq) > 0
}
