package router

import (
	"context"
	"time"

	"github.com/recserve/recserve/models"
)

// Recommend answers a recommendation request: resolve the route, run its
// sources concurrently (each inside its own timeout), blend, rerank, filter,
// diversify, and backfill from the fallback chain.
func (r *Router) Recommend(ctx context.Context, req Request) (resp Response, err error) {
	start := time.Now()
	t := r.tab.Load()
	k, err := validateK(req.K)
	if err != nil {
		return Response{}, err
	}
	if req.UserID == "" && len(req.SessionItems) == 0 {
		return Response{}, fieldErr("user_id", "user_id or session_items is required")
	}
	if err := validateSession(req.SessionItems); err != nil {
		return Response{}, err
	}
	if err := validateContext(req.Context); err != nil {
		return Response{}, err
	}
	if err := validatePrices(req.Filters); err != nil {
		return Response{}, err
	}
	prof, err := r.profile(ctx, req.UserID, req.SessionItems)
	if err != nil {
		return Response{}, err
	}
	p, err := r.resolve(t, req, len(prof.History)-len(req.SessionItems))
	if err != nil {
		return Response{}, err
	}
	var stats runStats
	defer func() { r.metrics.observe(p.name, p.arm, time.Since(start), err, resp.ColdStart, stats) }()

	rf := &noRouteFilters
	if p.route != nil {
		rf = &p.route.filters
	}
	q := models.Query{UserID: req.UserID, History: prof.History, Session: req.SessionItems, K: k, Context: req.Context,
		Allow: r.allow(prof, req.Filters, rf)}
	resp = Response{Route: p.name, Arm: p.arm, ColdStart: len(prof.History) == 0}

	// The pool is what the sources are asked for: more than k when a rerank
	// or diversity stage chooses among them.
	pool := k
	if rt := p.route; rt != nil {
		if rt.Rerank != nil {
			pool = max(pool, rt.Rerank.TopN)
		}
		if rt.Diversity != nil {
			pool = max(pool, 4*k)
		}
	}
	var results []sourceResult
	if !resp.ColdStart || req.Model != "" {
		sq := q
		sq.K = pool
		results = r.runSources(ctx, p.sources, sq)
		if err := ctx.Err(); err != nil {
			return Response{}, err
		}
		for _, res := range results {
			if res.err == nil {
				resp.Models = append(resp.Models, ModelVersion{res.source.Model, res.version})
				continue
			}
			if req.Model != "" {
				return Response{}, res.err
			}
			stats.sourceFailures++
			r.log.Warn("source dropped", "route", p.name, "arm", p.arm, "model", res.source.Model, "err", res.err)
		}
	}
	var items []Item
	if p.route != nil {
		items = blendRoute(results, p.route.Route, pool)
		if p.route.Rerank != nil && len(items) > 1 {
			if items, err = r.rerank(ctx, &resp, items, p.route.Rerank, q); err != nil {
				return Response{}, err
			}
		}
		if d := p.route.Diversity; d != nil {
			items = r.diversify(items, d, k)
		}
	} else {
		items = blendRoute(results, &Route{Blend: BlendMinMax}, k)
	}
	items = items[:min(k, len(items))]
	if len(items) < k && req.Model == "" {
		if len(items) == 0 {
			stats.fallback = true
		}
		if items, err = r.backfill(ctx, &resp, items, p.fallbacks, q); err != nil {
			return Response{}, err
		}
	}
	resp.Items = items
	return resp, nil
}
