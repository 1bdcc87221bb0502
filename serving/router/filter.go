package router

import (
	"math"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// allow builds the item filter of a request from its own filters and the
// route's. It allocates only for explicit exclusions; the seen set is the
// store's.
func (r *Router) allow(p store.Profile, f Filters, rf RouteFilters) func(string) bool {
	var seen, purchased map[string]struct{}
	switch rf.Exclude {
	case ExcludePurchased:
		purchased = purchasedSet(p.History)
	case ExcludeNone:
	default: // seen
		if !f.IncludeSeen {
			seen = p.Seen
		}
	}
	excluded := setOf(f.ExcludeItems)
	exCat := union(setOf(f.ExcludeCategories), setOf(rf.ExcludeCategories))
	inCat := intersectCats(setOf(f.IncludeCategories), setOf(rf.IncludeCategories))
	lo, hi := priceBounds(f, rf)
	bounded := !math.IsInf(lo, -1) || !math.IsInf(hi, 1)
	needItem := exCat != nil || inCat != nil || bounded
	return func(id string) bool {
		if _, ok := seen[id]; ok {
			return false
		}
		if _, ok := purchased[id]; ok {
			return false
		}
		if _, ok := excluded[id]; ok {
			return false
		}
		if hidden, out := r.store.Availability(id); hidden || out && !rf.IncludeOutOfStock {
			return false
		}
		if !needItem {
			return true
		}
		it, ok := r.store.Item(id)
		if !ok {
			return inCat == nil && !bounded
		}
		if _, ok := exCat[it.Category]; ok {
			return false
		}
		if inCat != nil {
			if _, ok := inCat[it.Category]; !ok {
				return false
			}
		}
		if bounded && (math.IsNaN(it.Price) || it.Price < lo || it.Price > hi) {
			return false
		}
		return true
	}
}

// purchasedSet is the set of items purchased in h; nil when there are none.
func purchasedSet(h []dataset.Interaction) map[string]struct{} {
	var s map[string]struct{}
	for _, in := range h {
		if in.Event == dataset.Purchase {
			if s == nil {
				s = map[string]struct{}{}
			}
			s[in.ItemID] = struct{}{}
		}
	}
	return s
}

// priceBounds combines the request's and the route's price bounds (the
// tighter of each).
func priceBounds(f Filters, rf RouteFilters) (lo, hi float64) {
	lo, hi = math.Inf(-1), math.Inf(1)
	for _, b := range []*float64{f.PriceMin, rf.PriceMin} {
		if b != nil {
			lo = max(lo, *b)
		}
	}
	for _, b := range []*float64{f.PriceMax, rf.PriceMax} {
		if b != nil {
			hi = min(hi, *b)
		}
	}
	return lo, hi
}

// setOf is the set of xs; nil for none, which the filters read as "no
// constraint".
func setOf(xs []string) map[string]struct{} {
	if len(xs) == 0 {
		return nil
	}
	s := make(map[string]struct{}, len(xs))
	for _, x := range xs {
		s[x] = struct{}{}
	}
	return s
}

// union adds b to a and returns it, or returns b when a is empty; b is
// never modified.
func union(a, b map[string]struct{}) map[string]struct{} {
	if len(a) == 0 {
		return b
	}
	for x := range b {
		a[x] = struct{}{}
	}
	return a
}

// intersectCats combines two include lists: both must allow a category; nil
// means no restriction. Two disjoint lists allow nothing.
func intersectCats(a, b map[string]struct{}) map[string]struct{} {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := map[string]struct{}{}
	for x := range a {
		if _, ok := b[x]; ok {
			out[x] = struct{}{}
		}
	}
	return out
}
