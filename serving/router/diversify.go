package router

import (
	"math"
	"slices"
)

// diversify picks k items from the ranked candidates: by maximal marginal
// relevance when MMRLambda is set, then with at most MaxPerCategory items of
// a category. Candidates keep their scores.
func (r *Router) diversify(items []Item, d *Diversity, k int) []Item {
	cat := func(id string) (string, string) {
		it, _ := r.store.Item(id)
		return it.Category, it.Brand
	}
	if d.MMRLambda > 0 && len(items) > 1 {
		items = mmr(items, d.MMRLambda, cat)
	}
	if d.MaxPerCategory <= 0 {
		return items
	}
	perCat := map[string]int{}
	out := make([]Item, 0, min(k, len(items)))
	for _, it := range items {
		c, _ := cat(it.ItemID)
		if c != "" && perCat[c] >= d.MaxPerCategory {
			continue
		}
		perCat[c]++
		out = append(out, it)
		if len(out) == k {
			break
		}
	}
	return out
}

// mmr reorders items greedily by λ·relevance − (1−λ)·max similarity to the
// items chosen so far; relevance is the min-max normalised score and two
// items are similar (1) in the same category, or 0.5 with the same brand.
func mmr(items []Item, lambda float64, attrs func(string) (string, string)) []Item {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, it := range items {
		lo, hi = min(lo, it.Score), max(hi, it.Score)
	}
	type cand struct {
		it         Item
		cat, brand string
		rel, sim   float64
	}
	rest := make([]cand, len(items))
	for i, it := range items {
		c, b := attrs(it.ItemID)
		rest[i] = cand{it: it, cat: c, brand: b, rel: normalise(it.Score, lo, hi)}
	}
	out := make([]Item, 0, len(items))
	for len(rest) > 0 {
		best := 0
		bestV := math.Inf(-1)
		for i, c := range rest {
			if v := lambda*c.rel - (1-lambda)*c.sim; v > bestV {
				best, bestV = i, v
			}
		}
		chosen := rest[best]
		out = append(out, chosen.it)
		rest = slices.Delete(rest, best, best+1)
		for i := range rest {
			s := 0.0
			switch {
			case rest[i].cat != "" && rest[i].cat == chosen.cat:
				s = 1
			case rest[i].brand != "" && rest[i].brand == chosen.brand:
				s = 0.5
			}
			rest[i].sim = max(rest[i].sim, s)
		}
	}
	return out
}
