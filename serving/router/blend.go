package router

import (
	"math"

	"github.com/recserve/recserve/models/topk"
)

// blendRoute merges the successful sources' candidates by the route's blend
// method and returns the best n. A single source keeps its own scores.
func blendRoute(results []sourceResult, rt *Route, n int) []Item {
	var ok []sourceResult
	for _, res := range results {
		if res.err == nil && len(res.items) > 0 {
			ok = append(ok, res)
		}
	}
	switch len(ok) {
	case 0:
		return nil
	case 1:
		return single(ok[0], n)
	}
	type acc struct {
		score   float64
		sources []string
	}
	byItem := map[string]*acc{}
	var order []string
	for _, res := range ok {
		// One shared slice per source: cap 1 makes a second append copy.
		src := []string{res.source.Model}
		lo, hi := res.items[len(res.items)-1].Score, res.items[0].Score
		for rank, it := range res.items {
			var s float64
			switch rt.Blend {
			case BlendRank:
				s = res.source.Weight * (1 - float64(rank)/float64(len(res.items)))
			case BlendRRF:
				s = res.source.Weight / (rt.RRFK + float64(rank+1))
			default:
				s = res.source.Weight * normalise(it.Score, lo, hi)
			}
			a, seen := byItem[it.ItemID]
			if !seen {
				a = &acc{}
				byItem[it.ItemID] = a
				order = append(order, it.ItemID)
			}
			a.score += s
			if a.sources == nil {
				a.sources = src
			} else {
				a.sources = append(a.sources, res.source.Model)
			}
		}
	}
	c := topk.New(n)
	for _, id := range order {
		c.Push(id, byItem[id].score)
	}
	top := c.Sorted()
	out := make([]Item, len(top))
	for i, s := range top {
		out[i] = Item{ItemID: s.ItemID, Score: s.Score, Sources: byItem[s.ItemID].sources}
	}
	return out
}

// single converts one source's answer, keeping its scores and order.
func single(res sourceResult, n int) []Item {
	items := res.items[:min(n, len(res.items))]
	src := []string{res.source.Model}
	out := make([]Item, len(items))
	for i, s := range items {
		out[i] = Item{ItemID: s.ItemID, Score: s.Score, Sources: src}
	}
	return out
}

// normalise maps s from [lo,hi] to [0,1]; a constant source maps to 1.
func normalise(s, lo, hi float64) float64 {
	if hi-lo <= 0 || math.IsInf(hi-lo, 0) {
		return 1
	}
	return (s - lo) / (hi - lo)
}
