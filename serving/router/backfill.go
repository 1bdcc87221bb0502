package router

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/recserve/recserve/models"
)

// backfill tops up items from the fallback chain, each model in turn, below
// every item already chosen. It fails only when nothing at all can be
// returned.
func (r *Router) backfill(ctx context.Context, resp *Response, items []Item, chain []string, q models.Query) ([]Item, error) {
	k := q.K
	chosen := make(map[string]struct{}, len(items))
	floor := math.Inf(1)
	for _, it := range items {
		chosen[it.ItemID] = struct{}{}
		floor = min(floor, it.Score)
	}
	allow := q.Allow
	q.Allow = func(id string) bool {
		if _, ok := chosen[id]; ok {
			return false
		}
		return allow == nil || allow(id)
	}
	var errs []error
	for _, fb := range chain {
		need := k - len(items)
		if need <= 0 {
			break
		}
		// Candidates pins the model to exactly the missing count (see
		// candidates).
		res := r.runSource(ctx, nil, Source{Model: fb, Weight: 1, Candidates: need}, q)
		if res.err != nil {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r.log.Warn("fallback failed", "route", resp.Route, "model", fb, "err", res.err)
			errs = append(errs, fmt.Errorf("fallback %q: %w", fb, res.err))
			continue
		}
		if len(res.items) > need {
			res.items = res.items[:need]
		}
		if len(res.items) == 0 {
			continue
		}
		if !contains(resp.Models, fb) {
			resp.Models = append(resp.Models, ModelVersion{Name: fb, Version: res.version, Canary: res.canary})
		}
		// Keep backfilled items below the chosen ones whatever their scale.
		shift := 0.0
		if len(items) > 0 && res.items[0].Score >= floor {
			shift = res.items[0].Score - floor + 1
		}
		src := []string{fb}
		for _, s := range res.items {
			items = append(items, Item{ItemID: s.ItemID, Score: s.Score - shift, Sources: src})
			chosen[s.ItemID] = struct{}{}
			floor = min(floor, s.Score-shift)
		}
	}
	if len(items) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return items, nil
}

// contains reports whether ms lists a version of the model name.
func contains(ms []ModelVersion, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}
