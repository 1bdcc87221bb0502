package router

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/recserve/recserve/models"
)

// rerank re-scores the first TopN items with the route's scorer and orders
// them by weight·scorer + (1−weight)·blend, both min-max normalised; items
// past TopN keep their order below. A failing scorer leaves the order as it
// was (logged): reranking improves an answer, it must not break it.
func (r *Router) rerank(ctx context.Context, resp *Response, items []Item, rr *Rerank, q models.Query) ([]Item, error) {
	n := min(rr.TopN, len(items))
	head := items[:n]
	ids := make([]string, n)
	for i, it := range head {
		ids[i] = it.ItemID
	}
	l, err := r.models.Acquire(rr.Model, unit(q.UserID, q.Session))
	var scores []float64
	if err == nil {
		defer l.Release()
		sc, ok := l.Model().(models.Scorer)
		if !ok {
			err = fmt.Errorf("model %q cannot score: %w", rr.Model, models.ErrUnsupported)
		} else {
			start := time.Now()
			scores, err = sc.Score(ctx, q, ids)
			r.metrics.observeModel(rr.Model, l.Version(), time.Since(start), err)
			if err == nil && len(scores) != n {
				err = fmt.Errorf("model %q returned %d scores for %d items", rr.Model, len(scores), n)
			}
		}
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		r.log.Warn("rerank skipped", "route", resp.Route, "model", rr.Model, "err", err)
		return items, nil
	}
	resp.Models = append(resp.Models, ModelVersion{Name: rr.Model, Version: l.Version(), Canary: l.Canary()})
	slo, shi := minMax(scores)
	blo, bhi := math.Inf(1), math.Inf(-1)
	for _, it := range head {
		blo, bhi = min(blo, it.Score), max(bhi, it.Score)
	}
	out := slices.Clone(items)
	for i := range out[:n] {
		out[i].Score = rr.Weight*normalise(scores[i], slo, shi) + (1-rr.Weight)*normalise(head[i].Score, blo, bhi)
	}
	slices.SortStableFunc(out[:n], func(a, b Item) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return strings.Compare(a.ItemID, b.ItemID)
	})
	// Items past the reranked head stay below it whatever their scale.
	for i := n; i < len(out); i++ {
		out[i].Score = -float64(i - n + 1)
	}
	return out, nil
}

// minMax returns the smallest and the largest of xs.
func minMax(xs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}
