package router

import (
	"math"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// routeFilters are a route's RouteFilters compiled once for all its
// requests: the category sets built and the price bounds resolved. They are
// read-only: allow combines them with a request's filters without modifying
// them.
type routeFilters struct {
	exclude           string // RouteFilters.Exclude
	includeOutOfStock bool
	// excludeCats and includeCats are the category lists as sets, nil when
	// empty ("no constraint").
	excludeCats, includeCats map[string]struct{}
	// lo and hi bound prices, -Inf and +Inf when unset.
	lo, hi float64
}

// noRouteFilters are the filters of a request without a route (a model
// override, SimilarItems): the request's own filters alone.
var noRouteFilters = compileFilters(RouteFilters{})

// compileFilters builds the routeFilters of rf.
func compileFilters(rf RouteFilters) routeFilters {
	lo, hi := math.Inf(-1), math.Inf(1)
	if rf.PriceMin != nil {
		lo = *rf.PriceMin
	}
	if rf.PriceMax != nil {
		hi = *rf.PriceMax
	}
	return routeFilters{exclude: rf.Exclude, includeOutOfStock: rf.IncludeOutOfStock,
		excludeCats: setOf(rf.ExcludeCategories), includeCats: setOf(rf.IncludeCategories), lo: lo, hi: hi}
}

// allow builds the item filter of a request from its own filters and the
// route's compiled ones. It allocates only for the request's explicit
// exclusions; the seen set is the store's and the route's sets are shared.
func (r *Router) allow(p store.Profile, f Filters, rf *routeFilters) func(string) bool {
	var seen, purchased map[string]struct{}
	switch rf.exclude {
	case ExcludePurchased:
		purchased = purchasedSet(p.History)
	case ExcludeNone:
	default: // seen
		if !f.IncludeSeen {
			seen = p.Seen
		}
	}
	excluded := setOf(f.ExcludeItems)
	exCat := union(setOf(f.ExcludeCategories), rf.excludeCats)
	inCat := intersectCats(setOf(f.IncludeCategories), rf.includeCats)
	lo, hi := priceBounds(f, rf)
	bounded := !math.IsInf(lo, -1) || !math.IsInf(hi, 1)
	needItem := exCat != nil || inCat != nil || bounded
	negative := p.Excluded
	return func(id string) bool {
		if _, ok := seen[id]; ok {
			return false
		}
		if _, ok := negative[id]; ok {
			return false
		}
		if _, ok := purchased[id]; ok {
			return false
		}
		if _, ok := excluded[id]; ok {
			return false
		}
		if hidden, out := r.store.Availability(id); hidden || out && !rf.includeOutOfStock {
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
func priceBounds(f Filters, rf *routeFilters) (lo, hi float64) {
	lo, hi = rf.lo, rf.hi
	if f.PriceMin != nil {
		lo = max(lo, *f.PriceMin)
	}
	if f.PriceMax != nil {
		hi = min(hi, *f.PriceMax)
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
// means no restriction. Two disjoint lists allow nothing. Neither set is
// modified: the result is a, b or a new set.
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
